package io.migrate.interop.units;

import com.mongodb.client.MongoDatabase;

import io.mongock.api.annotations.BeforeExecution;
import io.mongock.api.annotations.ChangeUnit;
import io.mongock.api.annotations.Execution;
import io.mongock.api.annotations.RollbackBeforeExecution;
import io.mongock.api.annotations.RollbackExecution;

@ChangeUnit(id = "interop-c", order = "003", author = "interop")
public class UnitC {
  @BeforeExecution
  public void before(MongoDatabase db) {
    Effects.apply(db, "interop-c_before");
  }

  @RollbackBeforeExecution
  public void rollbackBefore(MongoDatabase db) {
    Effects.undo(db, "interop-c_before");
  }

  @Execution
  public void execution(MongoDatabase db) {
    Effects.apply(db, "interop-c");
  }

  @RollbackExecution
  public void rollback(MongoDatabase db) {
    Effects.undo(db, "interop-c");
  }
}
