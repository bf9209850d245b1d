use migrate_macros::{change_log, change_set};

#[change_log]
struct DatabaseChangelog;

#[change_log]
impl DatabaseChangelog {
    #[change_set(id = "someChangeId")]
    async fn important_work(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn main() {}
