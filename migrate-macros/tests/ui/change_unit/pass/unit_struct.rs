use migrate_macros::{change_unit, execution, rollback_execution};

#[change_unit(id = "unit", order = "001")]
pub struct UnitStruct;

impl UnitStruct {
    #[execution]
    async fn execute(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result<(), migrate::BoxError> {
        Ok(())
    }
}

fn main() {}
