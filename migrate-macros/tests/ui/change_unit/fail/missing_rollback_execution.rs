use migrate_macros::{change_unit, execution};

#[change_unit(id = "unit", order = "001")]
struct Unit;

impl Unit {
    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
