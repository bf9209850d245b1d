package io.migrate.interop;

import com.mongodb.client.MongoClient;
import com.mongodb.client.MongoClients;
import io.migrate.interop.units.LegacyChangeLog;
import io.migrate.interop.units.UnitA;
import io.migrate.interop.units.UnitB;
import io.migrate.interop.units.UnitC;
import io.migrate.interop.units.UnitFail;
import io.migrate.interop.units.UnitSlow;
import io.mongock.api.config.LegacyMigration;
import io.mongock.driver.mongodb.sync.v4.driver.MongoSync4Driver;
import io.mongock.runner.core.executor.MongockRunner;
import io.mongock.runner.standalone.MongockStandalone;
import io.mongock.runner.standalone.RunnerStandaloneBuilder;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A Java service that runs Mongock 5 standalone against the database the Rust runner uses.
 *
 * <p>Everything comes from the environment, with the same names the Rust side reads:
 *
 * <pre>
 * INTEROP_URI                 the server (required)
 * INTEROP_DB                  the database (default "interop")
 * INTEROP_UNITS               the units to include, comma-separated: a, b, c, fail, slow, legacy
 * INTEROP_TRANSACTIONAL       "true" (default) or "false"; Mongock does not detect a standalone server
 * INTEROP_INDEX_CREATION      "true" (default) or "false"
 * INTEROP_LOCK_LEASE_MILLIS   how long the lock is taken for (default 60000)
 * INTEROP_LOCK_QUIT_MILLIS    how long to wait for the lock (default 180000)
 * INTEROP_LOCK_TRY_MILLIS     how often to try (default 1000)
 * INTEROP_SLOW_BEFORE_MILLIS  how long interop-slow's before-step sleeps (default 0)
 * INTEROP_SLOW_MILLIS         how long interop-slow's execution sleeps (default 0)
 * INTEROP_SERVICE             the service identifier (default "java")
 * INTEROP_LEGACY_MIGRATION    the collection of an earlier history to import first (default none)
 * </pre>
 *
 * <p>It prints {@code interop: ...} progress lines on stderr and exits 0 when Mongock succeeds,
 * 1 with {@code error: ...} when it fails.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    try {
      run();
      System.err.println("interop: done");
      System.exit(0);
    } catch (Throwable error) {
      System.err.println("error: " + error);
      for (Throwable cause = error.getCause(); cause != null; cause = cause.getCause()) {
        System.err.println("  caused by: " + cause);
      }
      System.exit(1);
    }
  }

  private static void run() {
    String uri = Settings.required("INTEROP_URI");
    String database = Settings.string("INTEROP_DB", "interop");
    boolean transactional = Settings.flag("INTEROP_TRANSACTIONAL", true);
    try (MongoClient client = MongoClients.create(uri)) {
      MongoSync4Driver driver =
          MongoSync4Driver.withLockStrategy(
              client,
              database,
              Settings.number("INTEROP_LOCK_LEASE_MILLIS", 60_000),
              Settings.number("INTEROP_LOCK_QUIT_MILLIS", 180_000),
              Settings.number("INTEROP_LOCK_TRY_MILLIS", 1_000));
      driver.setIndexCreation(Settings.flag("INTEROP_INDEX_CREATION", true));
      if (!transactional) {
        driver.disableTransaction();
      }
      Map<String, Object> metadata = new LinkedHashMap<>();
      metadata.put("side", "java");
      RunnerStandaloneBuilder builder =
          MongockStandalone.builder()
              .setDriver(driver)
              .setTransactional(transactional)
              .setServiceIdentifier(Settings.string("INTEROP_SERVICE", "java"))
              .withMetadata(metadata);
      String origin = Settings.string("INTEROP_LEGACY_MIGRATION", "");
      if (!origin.isEmpty()) {
        builder.setLegacyMigration(new LegacyMigration(origin));
      }
      for (String unit : Settings.string("INTEROP_UNITS", "").split(",")) {
        switch (unit.trim()) {
          case "" -> {}
          case "a" -> builder.addMigrationClass(UnitA.class);
          case "b" -> builder.addMigrationClass(UnitB.class);
          case "c" -> builder.addMigrationClass(UnitC.class);
          case "fail" -> builder.addMigrationClass(UnitFail.class);
          case "slow" -> builder.addMigrationClass(UnitSlow.class);
          case "legacy" -> builder.addMigrationClass(LegacyChangeLog.class);
          default -> throw new IllegalArgumentException(
              "INTEROP_UNITS: unknown unit `" + unit + "` (a, b, c, fail, slow, legacy)");
        }
      }
      MongockRunner runner = builder.buildRunner();
      runner.execute();
    }
  }
}
