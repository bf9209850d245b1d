use migrate::memory::MemorySession;
use migrate::{Dep, DescribeChangeLog};
use migrate_macros::{change_log, change_set};

struct ThirdPartyApi;

#[change_log(order = "001", profiles = ["dev", "!prod"], crate = ::migrate)]
pub struct DatabaseChangelog {
    api: Dep<ThirdPartyApi>,
}

#[change_log(crate = ::migrate)]
impl DatabaseChangelog {
    #[change_set(id = "someChangeId", author = "testAuthor", order = "001")]
    async fn important_work(&self, session: &mut MemorySession) -> anyhow::Result<()> {
        session.insert("key", "value");
        let _ = &self.api;
        Ok(())
    }

    #[change_set(
        id = "with-version",
        author = "testAuthor",
        order = "002",
        system_version = "1.1",
        run_always = false,
        profiles = ["!test"]
    )]
    async fn versioned(&self, api: Dep<ThirdPartyApi>) -> Result<(), migrate::BoxError> {
        let _ = api;
        Ok(())
    }

    /// Not a change set: left as it is.
    fn helper(&self) -> usize {
        2
    }
}

/// No order: sorted by its type name. Its change sets live in two impl blocks.
#[change_log]
struct Unordered;

#[change_log]
impl Unordered {
    #[change_set(id = "first", author = "me")]
    async fn first(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

#[change_log]
impl Unordered {
    #[change_set(id = "second", author = "me")]
    async fn second(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {
    let sets = DatabaseChangelog::change_sets();
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].id(), "someChangeId");
    assert_eq!(sets[0].order(), "001");
    assert_eq!(sets[0].change_log_profiles(), ["dev", "!prod"]);
    assert_eq!(sets[1].profiles(), ["!test"]);
    assert_eq!(Unordered::change_sets().len(), 2);
    assert_eq!(Unordered::change_sets()[0].order(), "Unordered");
    let _ = DatabaseChangelog { api: migrate::Dep::from_arc(std::sync::Arc::new(ThirdPartyApi)) }.helper();
}
