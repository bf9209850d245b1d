//! The MongoDB handles are injectable through the facade: `Database` and `Client` as fields
//! and parameters, `&mut ClientSession` as the session parameter. Needs no server.

use std::any::type_name;

use migrate::{change_unit, execution, rollback_execution, DescribeUnit};
use mongodb::{Client, ClientSession, Database};

#[change_unit(id = "mongo", order = "001")]
struct Mongo {
    db: Database,
}

impl Mongo {
    #[execution]
    async fn execute(&self, session: &mut ClientSession, client: Client) -> anyhow::Result<()> {
        let _ = (session, client, &self.db);
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, db: Database) -> Result<(), mongodb::error::Error> {
        let _ = db;
        Ok(())
    }
}

#[test]
fn database_client_and_session_are_injection_sites() {
    let sites: Vec<(&str, bool, bool, &str)> = Mongo::change_unit()
        .requirements()
        .into_iter()
        .map(|(req, site)| (req.type_name, req.optional, req.session, site))
        .collect();
    let database = type_name::<Database>();
    assert_eq!(
        sites,
        [
            (database, false, false, "field `db`"),
            (
                type_name::<ClientSession>(),
                false,
                true,
                "parameter `session` of `execute`"
            ),
            (
                type_name::<Client>(),
                false,
                false,
                "parameter `client` of `execute`"
            ),
            (database, false, false, "parameter `db` of `rollback`"),
        ]
    );
}
