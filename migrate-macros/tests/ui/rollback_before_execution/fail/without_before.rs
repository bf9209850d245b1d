use migrate_macros::{change_unit, execution, rollback_before_execution, rollback_execution};

#[change_unit(id = "unit", order = "001")]
struct Unit;

impl Unit {
    #[rollback_before_execution]
    async fn drop_collection(&self) -> anyhow::Result<()> {
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
