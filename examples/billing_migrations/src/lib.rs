//! Billing change units, kept in a library crate.
//!
//! Nothing in an application calls into this crate, so the linker would drop it, and its units
//! with it. An application that runs these units must reference the crate:
//!
//! ```ignore
//! use billing_migrations as _;
//! ```

use migrate::{change_unit, execution, rollback_execution};
use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Database};

/// Creates the default invoice settings document.
#[change_unit(
    id = "billing-defaults",
    order = "billing-001",
    author = "billing-team"
)]
pub struct BillingDefaults {
    db: Database,
}

impl BillingDefaults {
    #[execution]
    async fn insert_defaults(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        self.db
            .collection::<Document>("billing_settings")
            .insert_one(doc! { "_id": "defaults", "currency": "EUR", "net_days": 30 })
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn remove_defaults(&self) -> mongodb::error::Result<()> {
        self.db
            .collection::<Document>("billing_settings")
            .delete_one(doc! { "_id": "defaults" })
            .await?;
        Ok(())
    }
}

/// Moves the payment terms to 14 days.
#[change_unit(
    id = "billing-net-days-14",
    order = "billing-002",
    author = "billing-team"
)]
pub struct ShorterPaymentTerms {
    db: Database,
}

impl ShorterPaymentTerms {
    #[execution]
    async fn shorten(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        self.db
            .collection::<Document>("billing_settings")
            .update_one(
                doc! { "_id": "defaults" },
                doc! { "$set": { "net_days": 14 } },
            )
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn restore(&self) -> mongodb::error::Result<()> {
        self.db
            .collection::<Document>("billing_settings")
            .update_one(
                doc! { "_id": "defaults" },
                doc! { "$set": { "net_days": 30 } },
            )
            .await?;
        Ok(())
    }
}
