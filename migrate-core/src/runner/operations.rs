//! Operating a database besides running forward: the dry run, status, history, undo, up-to,
//! unlock, validation and accepting changed checksums.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use super::{check_strategy, execution, provide, read_history, transactions_enabled, Runner};
use crate::context::RunContext;
use crate::drift::{self, AcceptedChecksum};
use crate::error::Error;
use crate::execution::undo_targets;
use crate::history::{ExecutedSet, HistoryEntry};
use crate::ids;
use crate::inject::Dependencies;
use crate::lock::{self, Lease};
use crate::plan::{check_dependencies, check_unknown_history, Plan};
use crate::registry;
use crate::report::{Report, RunStatus};
use crate::status::Status;
use crate::store::{LockStore, TransactionStore};
use crate::text::release_reason_text;
use crate::unlock::{release_reason, Unlock};
use crate::validate::{self, Validation};

impl<S: TransactionStore + LockStore> Runner<S> {
    /// Computes what a run would do, without taking the lock or writing anything.
    ///
    /// It makes every check a run makes before it starts: the options, unknown history,
    /// drift under [`ChecksumPolicy::Strict`](crate::ChecksumPolicy::Strict), and, when
    /// something is pending, missing dependencies and transactions forced on a store without
    /// them. An error here is the error the run would fail with.
    pub async fn plan(&self) -> Result<Plan, Error> {
        self.plan_with(None).await
    }

    /// The plan of [`run_up_to(id)`](Self::run_up_to): like [`plan`](Self::plan), with the
    /// units ordered after `id` skipped.
    pub async fn plan_up_to(&self, id: &str) -> Result<Plan, Error> {
        self.plan_with(Some(id)).await
    }

    async fn plan_with(&self, up_to: Option<&str>) -> Result<Plan, Error> {
        let mut input = self.options.check()?;
        if up_to.is_some() {
            input.up_to = up_to;
        }
        let history = read_history(&self.store).await?;
        let plan = Plan::new(&input, &history)?;
        if !self.options.allow_unknown_history {
            check_unknown_history(&plan, &history)?;
        }
        drift::enforce(&plan, self.options.checksum_policy)?;
        if plan.has_pending() {
            let mut provided = Dependencies::new();
            self.store.provide(&mut provided);
            provided.insert(RunContext::new(Vec::new(), self.options.retry_deadline));
            plan.check_dependencies(&[&self.deps, &provided])?;
            let transactions =
                transactions_enabled(&self.store, self.options.transactional, &plan).await?;
            check_strategy(self.options.strategy, transactions, &plan)?;
        }
        Ok(plan)
    }

    /// Every unit of the binary with its recorded state, drift and order problems, and the
    /// history rows of units the binary does not contain, marking those that make a run
    /// refuse to start unless [`allow_unknown_history`](Self::allow_unknown_history) is set
    /// ([`Status::blocking`]; [`Status::is_up_to_date`] is then `false`). One read, no lock.
    pub async fn status(&self) -> Result<Status, Error> {
        Ok(self.status_and_history().await?.0)
    }

    /// [`status`](Self::status) with the history entries it was built from, as stored: one
    /// read for both.
    pub async fn status_and_history(
        &self,
    ) -> Result<(Status, Vec<HistoryEntry<S::Metadata>>), Error> {
        let input = self.options.check()?;
        let history = read_history(&self.store).await?;
        let plan = Plan::new(&input, &history)?;
        let status = Status::new(&plan, &history, self.options.allow_unknown_history);
        Ok((status, history))
    }

    /// Every history entry, newest first.
    pub async fn history(&self) -> Result<Vec<HistoryEntry<S::Metadata>>, Error> {
        let mut history = read_history(&self.store).await?;
        history.sort_by_key(|entry| std::cmp::Reverse(entry.timestamp));
        Ok(history)
    }

    /// Checks the units and options without a database: every invalid option, duplicate
    /// ids, ids that clash with another unit's before-step (`<id>_before`), numeric orders of
    /// different widths that run out of numeric order, profile and version expressions,
    /// transactional executions that take no session.
    pub fn validate(&self) -> Validation {
        let units: Vec<_> = match &self.options.units {
            Some(units) => units.clone(),
            None => registry::registered().iter().collect(),
        };
        validate::validate(
            &units,
            &self.options.default_author,
            self.options.problems(),
        )
    }

    /// Releases the lock if its lease has ended or a runner of this process holds it. A live
    /// lock of another runner is released only with `force`; without it the result says
    /// whose it is and until when.
    ///
    /// Forcing is for a holder that is gone but whose lease has not run out yet. A runner that
    /// still works under a forced lock finds it lost at its next write and stops.
    pub async fn unlock(&self, force: bool) -> Result<Unlock, Error> {
        let held = self
            .store
            .read_lock()
            .await
            .map_err(|e| Error::store("reading the lock", e))?;
        let Some(held) = held else {
            return Ok(Unlock::Free);
        };
        let Some(reason) = release_reason(&held, force) else {
            return Ok(Unlock::HeldBy {
                owner: held.owner,
                expires_at: held.expires_at,
            });
        };
        let removed = self
            .store
            .remove_lock(&held)
            .await
            .map_err(|e| Error::store("releasing the lock", e))?;
        if !removed {
            // Refreshed, released or taken over in between: decide again on what is there now.
            return match self
                .store
                .read_lock()
                .await
                .map_err(|e| Error::store("reading the lock", e))?
            {
                None => Ok(Unlock::Free),
                Some(now) => Ok(Unlock::HeldBy {
                    owner: now.owner,
                    expires_at: now.expires_at,
                }),
            };
        }
        tracing::warn!(owner = %held.owner, reason = release_reason_text(reason), "migration lock released by hand");
        Ok(Unlock::Released {
            owner: held.owner,
            expires_at: held.expires_at,
            reason,
        })
    }

    /// Runs like [`run`](Self::run), stopping after the unit `id` (inclusive): units ordered
    /// after it stay pending.
    pub async fn run_up_to(mut self, id: impl Into<String>) -> Result<Report, Error> {
        self.options.up_to = Some(id.into());
        self.run().await
    }

    /// Undoes every applied unit ordered at or after `id`, newest first.
    ///
    /// Under the lock, each unit's `#[rollback_execution]` runs (in a transaction where the
    /// store has them and the unit is transactional), then its `#[rollback_before_execution]`,
    /// each recorded as ROLLED_BACK so the unit is pending again. A unit whose rollback does
    /// nothing is an error before anything is undone; a failing rollback is recorded
    /// ROLLBACK_FAILED and stops the undo.
    pub async fn undo_to(self, id: impl Into<String>) -> Result<Report, Error> {
        self.undo(Some(id.into())).await
    }

    /// Undoes every applied unit, newest first; see [`undo_to`](Self::undo_to).
    pub async fn undo_all(self) -> Result<Report, Error> {
        self.undo(None).await
    }

    async fn undo(self, target: Option<String>) -> Result<Report, Error> {
        let execution_id = ids::execution_id();
        let span = tracing::info_span!("migrate_undo", execution_id = %execution_id);
        self.undo_in_span(target, execution_id)
            .instrument(span)
            .await
    }

    async fn undo_in_span(
        self,
        target: Option<String>,
        execution_id: String,
    ) -> Result<Report, Error> {
        let started = Instant::now();
        let Runner {
            store,
            options,
            metadata,
            mut deps,
            listeners,
            progress,
        } = self;
        let input = options.check()?;
        let history = read_history(&store).await?;
        let plan = Plan::new(&input, &history)?;
        if undo_targets(&plan, &history, target.as_deref())?.is_empty() {
            tracing::info!("no applied change units to undo");
            return Ok(Report::empty(execution_id, RunStatus::Completed, started));
        }
        let context = provide(&store, &mut deps, progress, options.retry_deadline);
        store
            .prepare()
            .await
            .map_err(|e| Error::store("preparing the history and lock collections", e))?;
        let transactions = match options.transactional {
            Some(false) => false,
            _ => store
                .supports_transactions()
                .await
                .map_err(|e| Error::store("detecting transaction support", e))?,
        };

        let store = Arc::new(store);
        let lease = acquire(&store, &options).await?;
        context.attach(lease.check(), &execution_id);
        let result = async {
            // The history may have changed before the lock was taken.
            let history = read_history(&*store).await?;
            let plan = Plan::new(&input, &history)?;
            let targets = undo_targets(&plan, &history, target.as_deref())?;
            check_dependencies(targets.iter().map(|t| &t.planned), &[&deps])?;
            let execution = execution(
                &*store,
                (&lease, &context),
                &deps,
                &execution_id,
                &options,
                metadata,
                transactions,
            );
            execution.undo(&targets, &history, &listeners).await
        }
        .await;
        release(lease).await;
        Ok(Report {
            execution_id,
            status: RunStatus::Completed,
            units: result?,
            elapsed: started.elapsed(),
        })
    }

    /// Records the current checksum of every applied unit whose code changed since it ran,
    /// under the lock. The replaced checksum stays in the entry (`previousChecksums`).
    pub async fn accept_checksums(self) -> Result<Vec<AcceptedChecksum>, Error> {
        let input = self.options.check()?;
        let history = read_history(&self.store).await?;
        if Plan::new(&input, &history)?.drifted().next().is_none() {
            return Ok(Vec::new());
        }
        let store = Arc::new(self.store);
        let lease = acquire(&store, &self.options).await?;
        let result = async {
            let history = read_history(&*store).await?;
            let plan = Plan::new(&input, &history)?;
            let executed = ExecutedSet::from_entries(&history);
            let mut accepted = Vec::new();
            for planned in plan.drifted() {
                let (Some(drift), Some(entry)) = (
                    &planned.drift,
                    executed.executed(planned.unit.id(), &planned.author),
                ) else {
                    continue;
                };
                if !lease.still_held().await? {
                    return Err(Error::LockLost {
                        unit_id: Some(planned.unit.id().to_owned()),
                        during: "before recording the checksum of",
                    });
                }
                let replaced = store
                    .replace_checksum(entry, &drift.current)
                    .await
                    .map_err(|e| {
                        Error::store(
                            format!("recording the checksum of `{}`", planned.unit.id()),
                            e,
                        )
                    })?;
                if replaced {
                    tracing::info!(id = planned.unit.id(), recorded = %drift.recorded, current = %drift.current, "checksum accepted");
                    accepted.push(AcceptedChecksum {
                        id: planned.unit.id().to_owned(),
                        author: planned.author.clone().into_owned(),
                        drift: drift.clone(),
                    });
                }
            }
            Ok(accepted)
        }
        .await;
        release(lease).await;
        result
    }
}

/// Takes the lock for an operation that writes, failing when another runner keeps it.
async fn acquire<S: LockStore>(
    store: &Arc<S>,
    options: &super::Options,
) -> Result<Lease<S>, Error> {
    let owner = ids::lock_owner();
    lock::acquire(store, &owner, options.timing, true)
        .await?
        .ok_or_else(|| Error::Locked {
            owner: "another runner".into(),
            expires_at: None,
        })
}

/// Releases the lock, warning when that fails (it expires with its lease).
async fn release<S: LockStore>(lease: Lease<S>) {
    if let Err(error) = lease.release().await {
        tracing::warn!(error = %crate::error::Chain(&error), "the migration lock could not be released; it expires with its lease");
    }
}
