use migrate::Dep;
use migrate_macros::{change_unit, execution, rollback_execution};

struct ThirdPartyApi;

/// Documented, with every key of the attribute.
#[change_unit(
    id = "client-initializer",
    order = "001",
    author = "platform",
    system_version = "2.5.1-rc1",
    run_always = true,
    transactional = false,
    fail_fast = false,
    profiles = ["dev", "!prod"],
    crate = ::migrate,
)]
#[derive(Clone)]
pub struct ClientInitializer {
    /// Fields may be documented too.
    api: Dep<ThirdPartyApi>,
}

impl ClientInitializer {
    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        let _api: &ThirdPartyApi = &self.api;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
