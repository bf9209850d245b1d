extern crate migrate as renamed;

mod units {
    use migrate_macros::{change_unit, execution, rollback_execution};

    #[change_unit(id = "renamed", order = "001", crate = crate::renamed)]
    pub struct Renamed;

    impl Renamed {
        #[execution(crate = crate::renamed)]
        async fn execute(&self) -> anyhow::Result<()> {
            Ok(())
        }

        #[rollback_execution(crate = "crate::renamed")]
        async fn rollback(&self) -> anyhow::Result<()> {
            Ok(())
        }
    }
}

fn main() {
    let _ = units::Renamed;
}
