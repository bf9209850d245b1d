//! The service's change units, one per release.

use migrate::{
    before_execution, change_unit, execution, rollback_before_execution, rollback_execution, Dep,
};
use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Database};

use crate::ThirdPartyClients;

const CLIENTS: &str = "clients";

/// Release 1: fetch the clients from the third party, once, and store them.
#[change_unit(
    id = "client-initializer",
    order = "001",
    author = "client-team",
    system_version = "1"
)]
pub(crate) struct ClientInitializer {
    db: Database,
    crm: Dep<ThirdPartyClients>,
}

impl ClientInitializer {
    /// Collections cannot be created inside a transaction, so this runs before it.
    #[before_execution]
    async fn create_collection(&self) -> mongodb::error::Result<()> {
        self.db.create_collection(CLIENTS).await
    }

    #[rollback_before_execution]
    async fn drop_collection(&self) -> mongodb::error::Result<()> {
        self.db.collection::<Document>(CLIENTS).drop().await
    }

    #[execution]
    async fn import_clients(&self, session: &mut ClientSession) -> anyhow::Result<()> {
        let clients = self.crm.fetch_clients().await?;
        self.db
            .collection::<Document>(CLIENTS)
            .insert_many(clients)
            .session(session)
            .await?;
        Ok(())
    }

    /// Runs when the import fails without a transaction to abort.
    #[rollback_execution]
    async fn remove_clients(&self) -> mongodb::error::Result<()> {
        self.db
            .collection::<Document>(CLIENTS)
            .delete_many(doc! {})
            .await?;
        Ok(())
    }
}

/// Release 1.1: every client gets a `status`. A unit with one step can be a function; its
/// rollback is another function, named in the attribute.
#[change_unit(
    id = "client-status",
    order = "002",
    author = "client-team",
    system_version = "1.1",
    rollback = remove_status
)]
async fn add_status(db: Database, session: &mut ClientSession) -> mongodb::error::Result<()> {
    db.collection::<Document>(CLIENTS)
        .update_many(
            doc! { "status": { "$exists": false } },
            doc! { "$set": { "status": "active" } },
        )
        .session(session)
        .await?;
    Ok(())
}

/// Undoes `add_status`.
async fn remove_status(db: Database) -> mongodb::error::Result<()> {
    db.collection::<Document>(CLIENTS)
        .update_many(doc! {}, doc! { "$unset": { "status": "" } })
        .await?;
    Ok(())
}

/// Release 2: loyalty tiers. Runs only once the service reports system version 2.
#[change_unit(
    id = "client-loyalty-tier",
    order = "003",
    author = "client-team",
    system_version = "2"
)]
pub(crate) struct ClientLoyaltyTier {
    db: Database,
}

impl ClientLoyaltyTier {
    #[execution]
    async fn add_tier(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        self.db
            .collection::<Document>(CLIENTS)
            .update_many(doc! {}, doc! { "$set": { "loyalty": "bronze" } })
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn remove_tier(&self) -> mongodb::error::Result<()> {
        self.db
            .collection::<Document>(CLIENTS)
            .update_many(doc! {}, doc! { "$unset": { "loyalty": "" } })
            .await?;
        Ok(())
    }
}
