//! The Java service's `DatabaseChangelog`, ported: same ids, same author, same order. The
//! first two change sets ran under mongobee; `backfill-plan` is new in the Rust service.

use migrate::{change_log, change_set};
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{ClientSession, Database, IndexModel};

#[change_log(order = "001")]
pub(crate) struct DatabaseChangelog {
    db: Database,
}

#[change_log]
impl DatabaseChangelog {
    #[change_set(id = "create-customers", author = "billing-team", order = "001")]
    async fn create_customers(&self) -> mongodb::error::Result<()> {
        self.db.create_collection("customers").await
    }

    #[change_set(id = "index-customer-email", author = "billing-team", order = "002")]
    async fn index_customer_email(&self) -> mongodb::error::Result<()> {
        let index = IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        self.customers().create_index(index).await?;
        Ok(())
    }

    /// Customers who signed up before plans existed are on the free plan.
    #[change_set(id = "backfill-plan", author = "billing-team", order = "003")]
    async fn backfill_plan(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        let without_plan = doc! { "plan": null };
        self.customers()
            .update_many(without_plan, doc! { "$set": { "plan": "free" } })
            .session(session)
            .await?;
        Ok(())
    }
}

impl DatabaseChangelog {
    fn customers(&self) -> mongodb::Collection<Document> {
        self.db.collection("customers")
    }
}
