use migrate_macros::{change_log, change_set};

#[change_log]
struct DatabaseChangelog;

// The impl block lacks `#[change_log]`.
impl DatabaseChangelog {
    #[change_set(id = "someChangeId", author = "testAuthor")]
    async fn important_work(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
