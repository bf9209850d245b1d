use migrate_macros::{change_unit, execution, rollback_execution};

#[change_unit(id = "unit", order = "001", author = " ")]
struct Unit;

impl Unit {
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
