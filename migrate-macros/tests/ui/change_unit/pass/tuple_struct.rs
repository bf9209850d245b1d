use migrate::Dep;
use migrate_macros::{change_unit, execution, rollback_execution};

struct Config(u32);

#[change_unit(id = "tuple", order = "001")]
struct Tuple(Dep<Config>, Option<Dep<String>>);

impl Tuple {
    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        let _ = (self.0 .0, &self.1);
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
