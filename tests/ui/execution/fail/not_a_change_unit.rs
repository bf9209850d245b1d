use migrate::execution;

struct Plain;

impl Plain {
    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
