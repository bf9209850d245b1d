use migrate_macros::{change_unit, execution, rollback_execution};

trait Steps {
    async fn execute(&self) -> anyhow::Result<()>;
}

#[change_unit(id = "unit", order = "001")]
struct Unit;

impl Steps for Unit {
    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

impl Unit {
    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
