use migrate::Dep;
use migrate_macros::change_unit;

struct ThirdPartyApi;

/// Documented, with every key of the attribute and injected parameters of each kind.
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
    rollback = self::undo::forget_clients,
)]
pub async fn initialize_clients(
    api: Dep<ThirdPartyApi>,
    by_ref: &ThirdPartyApi,
    maybe: Option<Dep<ThirdPartyApi>>,
) -> anyhow::Result<()> {
    let _api: &ThirdPartyApi = &api;
    let _ = (by_ref, maybe);
    Ok(())
}

mod undo {
    use super::ThirdPartyApi;
    use migrate::Dep;

    pub(super) async fn forget_clients(
        _api: Dep<ThirdPartyApi>,
        _maybe: Option<Dep<ThirdPartyApi>>,
    ) -> Result<(), std::io::Error> {
        Ok(())
    }
}

#[change_unit(id = "nothing-to-undo", order = "002", no_rollback)]
async fn r#type() -> anyhow::Result<()> {
    Ok(())
}

#[change_unit(id = "rollback-without-parameters", order = "003", rollback = undo_nothing)]
async fn with_a_parameterless_rollback(_api: &ThirdPartyApi) -> anyhow::Result<()> {
    Ok(())
}

async fn undo_nothing() -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
