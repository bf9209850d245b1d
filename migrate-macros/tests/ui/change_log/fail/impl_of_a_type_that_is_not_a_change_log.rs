use migrate_macros::{change_log, change_set};

// The struct lacks `#[change_log]`.
struct DatabaseChangelog;

#[change_log]
impl DatabaseChangelog {
    #[change_set(id = "first", author = "testAuthor")]
    async fn first(&self) -> anyhow::Result<()> {
        Ok(())
    }

    #[change_set(id = "second", author = "testAuthor")]
    async fn second(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
