//! Whether a run uses transactions, and whether its strategy suits its units.

use super::TransactionStrategy;
use crate::error::Error;
use crate::plan::Plan;
use crate::store::TransactionStore;

/// Whether this run uses transactions: forced on or off, or on when a pending unit wants one
/// and the store supports them.
pub(super) async fn transactions_enabled<S: TransactionStore>(
    store: &S,
    forced: Option<bool>,
    plan: &Plan,
) -> Result<bool, Error> {
    let wanted = plan.pending().any(|p| p.unit.transactional());
    match forced {
        Some(false) => Ok(false),
        None if !wanted => Ok(false),
        forced => {
            let supported = store
                .supports_transactions()
                .await
                .map_err(|e| Error::store("detecting transaction support", e))?;
            if forced == Some(true) && !supported {
                return Err(Error::TransactionsUnsupported {
                    reason: store.transactions_unsupported_reason(),
                });
            }
            Ok(supported && wanted)
        }
    }
}

/// Refuses a run-wide transaction over a pending unit that runs without one: its writes would
/// not be undone with the others' (they are not in the transaction), nor by its rollback
/// methods (the run does not call them for a unit in a transaction).
pub(super) fn check_strategy(
    strategy: TransactionStrategy,
    transactions: bool,
    plan: &Plan,
) -> Result<(), Error> {
    if !transactions || strategy != TransactionStrategy::PerRun {
        return Ok(());
    }
    match plan.pending().find(|p| !p.unit.transactional()) {
        Some(planned) => Err(Error::InvalidConfig {
            option: "transaction_strategy",
            reason: format!(
                "`PerRun` runs every execution in one transaction, but change unit `{}` sets \
                 `transactional = false`: use `TransactionStrategy::PerChangeUnit`, or let the \
                 unit run in the transaction",
                planned.unit.id()
            ),
        }),
        None => Ok(()),
    }
}
