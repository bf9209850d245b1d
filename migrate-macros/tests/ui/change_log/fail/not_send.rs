use std::rc::Rc;

use migrate::{Dependencies, Inject, Requirement};
use migrate_macros::{change_log, change_set};

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

#[change_log(order = "001", crate = ::migrate)]
pub struct DatabaseChangelog {
    local: Local,
}

#[change_log(crate = ::migrate)]
impl DatabaseChangelog {
    #[change_set(id = "work", author = "team")]
    async fn work(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
