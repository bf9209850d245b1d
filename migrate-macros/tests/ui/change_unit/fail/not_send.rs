use std::rc::Rc;

use migrate::{Dependencies, Inject, Requirement};
use migrate_macros::{change_unit, execution, rollback_execution};

/// An injectable type that cannot cross threads.
struct Local(Rc<u8>);

impl Inject<'_> for Local {
    fn requirement() -> Requirement {
        Requirement::of::<u8>()
    }

    fn resolve(_: &Dependencies) -> Option<Self> {
        Some(Local(Rc::new(0)))
    }
}

#[change_unit(id = "unit", order = "001")]
struct Unit {
    local: Local,
}

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
