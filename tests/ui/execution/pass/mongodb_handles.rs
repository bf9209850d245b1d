use migrate::{change_unit, execution, rollback_execution};
use mongodb::{ClientSession, Database};

#[change_unit(id = "mongo", order = "001")]
struct Mongo {
    db: Database,
}

impl Mongo {
    #[execution]
    async fn execute(&self, session: &mut ClientSession, client: mongodb::Client) -> anyhow::Result<()> {
        let _ = (session, client, &self.db);
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, db: Database) -> Result<(), mongodb::error::Error> {
        let _ = db;
        Ok(())
    }
}

fn main() {}
