use migrate_macros::{change_unit, execution, rollback_execution};

struct Api;

#[change_unit(id = "unit", order = "001")]
struct Unit {
    api: &'static Api,
}

impl Unit {
    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        let _ = &self.api;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
