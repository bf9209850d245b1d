package io.migrate.interop.units;

import com.github.cloudyrock.mongock.ChangeLog;
import com.github.cloudyrock.mongock.ChangeSet;
import com.mongodb.client.MongoDatabase;

/**
 * The legacy model (Mongock 3's annotations, still run by Mongock 5): each change set is
 * tracked on its own and has no rollback. Selected with INTEROP_UNITS=legacy; the scenario
 * `legacy-import` of `cargo xtask interop` runs it after importing a history that holds its
 * first change set.
 */
@ChangeLog(order = "010")
public class LegacyChangeLog {
  @ChangeSet(id = "interop-legacy-1", order = "001", author = "interop-legacy")
  public void first(MongoDatabase db) {
    Effects.apply(db, "interop-legacy-1");
  }

  @ChangeSet(id = "interop-legacy-2", order = "002", author = "interop-legacy")
  public void second(MongoDatabase db) {
    Effects.apply(db, "interop-legacy-2");
  }
}
