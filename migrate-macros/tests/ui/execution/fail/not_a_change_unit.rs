use migrate_macros::execution;

struct Plain;

impl Plain {
    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
