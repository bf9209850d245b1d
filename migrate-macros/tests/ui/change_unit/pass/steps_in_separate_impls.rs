use migrate_macros::{
    before_execution, change_unit, execution, rollback_before_execution, rollback_execution,
};

#[change_unit(id = "split", order = "001")]
struct Split;

impl Split {
    #[before_execution]
    async fn create_collection(&self) -> anyhow::Result<()> {
        Ok(())
    }

    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

impl Split {
    #[rollback_before_execution]
    async fn drop_collection(&self) -> anyhow::Result<()> {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Unmarked methods are left alone.
    fn helper(&self) -> u32 {
        1
    }
}

fn main() {
    let _ = Split.helper();
}
