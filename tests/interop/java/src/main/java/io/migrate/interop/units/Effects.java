package io.migrate.interop.units;

import com.mongodb.client.MongoDatabase;
import com.mongodb.client.model.UpdateOptions;
import com.mongodb.client.model.Updates;
import org.bson.Document;

/**
 * What every unit does to the data: counts its applications in {@code interop_counters}
 * ({@code {_id: <step id>, n, by: [...]}}), so that applying a step twice shows, and says so on
 * stderr. A rollback counts back down.
 */
public final class Effects {
  public static final String COUNTERS = "interop_counters";

  private Effects() {}

  public static void apply(MongoDatabase db, String step) {
    System.err.println("interop: " + step + " applying");
    db.getCollection(COUNTERS)
        .updateOne(
            new Document("_id", step),
            Updates.combine(Updates.inc("n", 1), Updates.push("by", "java")),
            new UpdateOptions().upsert(true));
    System.err.println("interop: " + step + " applied");
  }

  /** {@link #apply} after sleeping as many milliseconds as the variable {@code delay} says. */
  public static void applyAfter(String delay, MongoDatabase db, String step) {
    long millis = io.migrate.interop.Settings.number(delay, 0);
    if (millis > 0) {
      System.err.println("interop: " + step + " sleeping " + millis + " ms");
      try {
        Thread.sleep(millis);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(step + " interrupted", e);
      }
    }
    apply(db, step);
  }

  public static void undo(MongoDatabase db, String step) {
    System.err.println("interop: " + step + " rolling back");
    db.getCollection(COUNTERS)
        .updateOne(new Document("_id", step), Updates.inc("n", -1));
  }
}
