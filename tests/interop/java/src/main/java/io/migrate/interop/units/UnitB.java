package io.migrate.interop.units;

import com.mongodb.client.MongoDatabase;

import io.mongock.api.annotations.BeforeExecution;
import io.mongock.api.annotations.ChangeUnit;
import io.mongock.api.annotations.Execution;
import io.mongock.api.annotations.RollbackBeforeExecution;
import io.mongock.api.annotations.RollbackExecution;

@ChangeUnit(id = "interop-b", order = "002", author = "interop")
public class UnitB {
  @BeforeExecution
  public void before(MongoDatabase db) {
    Effects.apply(db, "interop-b_before");
  }

  @RollbackBeforeExecution
  public void rollbackBefore(MongoDatabase db) {
    Effects.undo(db, "interop-b_before");
  }

  @Execution
  public void execution(MongoDatabase db) {
    Effects.apply(db, "interop-b");
  }

  @RollbackExecution
  public void rollback(MongoDatabase db) {
    Effects.undo(db, "interop-b");
  }
}
