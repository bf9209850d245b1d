package io.migrate.interop.units;

import com.mongodb.client.MongoDatabase;

import io.mongock.api.annotations.BeforeExecution;
import io.mongock.api.annotations.ChangeUnit;
import io.mongock.api.annotations.Execution;
import io.mongock.api.annotations.RollbackBeforeExecution;
import io.mongock.api.annotations.RollbackExecution;

/**
 * Sleeps INTEROP_SLOW_BEFORE_MILLIS in its before-step (outside any transaction, where a
 * process killed leaves only its lock behind) and INTEROP_SLOW_MILLIS in its execution.
 */
@ChangeUnit(id = "interop-slow", order = "005", author = "interop")
public class UnitSlow {
  @BeforeExecution
  public void before(MongoDatabase db) {
    Effects.applyAfter("INTEROP_SLOW_BEFORE_MILLIS", db, "interop-slow_before");
  }

  @RollbackBeforeExecution
  public void rollbackBefore(MongoDatabase db) {
    Effects.undo(db, "interop-slow_before");
  }

  @Execution
  public void execution(MongoDatabase db) {
    Effects.applyAfter("INTEROP_SLOW_MILLIS", db, "interop-slow");
  }

  @RollbackExecution
  public void rollback(MongoDatabase db) {
    Effects.undo(db, "interop-slow");
  }
}
