use migrate::memory::MemorySession;
use migrate::Dep;
use migrate_macros::{change_unit, execution, rollback_execution};

struct ThirdPartyApi;
struct Cache;

#[change_unit(id = "injected", order = "001")]
struct Injected {
    api: Dep<ThirdPartyApi>,
    cache: Option<Dep<Cache>>,
}

impl Injected {
    /// Every kind of parameter at once.
    #[execution]
    pub(crate) async fn execute(
        &self,
        session: &mut MemorySession,
        api: &ThirdPartyApi,
        shared: Dep<ThirdPartyApi>,
        cache: Option<Dep<Cache>>,
        maybe: Option<&Cache>,
        _: &ThirdPartyApi,
    ) -> anyhow::Result<()> {
        session.insert("key", "value");
        let _ = (api, shared, cache, maybe, &self.api, &self.cache);
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut MemorySession) -> Result<(), migrate::BoxError> {
        session.remove("key");
        Ok(())
    }
}

fn main() {}
