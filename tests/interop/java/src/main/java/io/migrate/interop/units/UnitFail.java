package io.migrate.interop.units;

import com.mongodb.client.MongoDatabase;

import io.mongock.api.annotations.BeforeExecution;
import io.mongock.api.annotations.ChangeUnit;
import io.mongock.api.annotations.Execution;
import io.mongock.api.annotations.RollbackBeforeExecution;
import io.mongock.api.annotations.RollbackExecution;

/** Its before-step succeeds, its execution always fails: both are rolled back. */
@ChangeUnit(id = "interop-fail", order = "004", author = "interop")
public class UnitFail {
  @BeforeExecution
  public void before(MongoDatabase db) {
    Effects.apply(db, "interop-fail_before");
  }

  @RollbackBeforeExecution
  public void rollbackBefore(MongoDatabase db) {
    Effects.undo(db, "interop-fail_before");
  }

  @Execution
  public void execution(MongoDatabase db) {
    throw new IllegalStateException("interop-fail fails on purpose");
  }

  @RollbackExecution
  public void rollback(MongoDatabase db) {
    System.err.println("interop: interop-fail rolling back");
  }
}
