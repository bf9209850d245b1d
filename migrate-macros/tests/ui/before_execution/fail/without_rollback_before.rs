use migrate_macros::{before_execution, change_unit, execution, rollback_execution};

#[change_unit(id = "unit", order = "001")]
struct Unit;

impl Unit {
    #[before_execution]
    async fn create_collection(&self) -> anyhow::Result<()> {
        Ok(())
    }

    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
