//! Runner semantics (DESIGN §4) over the in-memory store: one behaviour per test.

mod support;

use std::time::{Duration, SystemTime};

use migrate::{
    before_execution, change_log, change_set, change_unit, execution, rollback_before_execution,
    rollback_execution, BoxError, ChangeUnit, Dep, DescribeChangeLog, DescribeUnit, EntryType,
    Error, Event, Outcome, RunContext, RunStatus, SkipReason, State, Step, TransactionStrategy,
};
use migrate_core::memory::{MemorySession, MemoryStore};
use migrate_core::{LockInfo, Runner};
use support::recorder::Recorder;

type Result<T = (), E = BoxError> = std::result::Result<T, E>;

fn runner(store: &MemoryStore, log: &Recorder) -> Runner<MemoryStore> {
    Runner::new(store.clone()).dependency(log.clone())
}

fn unit<T: DescribeUnit>() -> &'static ChangeUnit {
    T::change_unit()
}

fn entries(store: &MemoryStore, change_id: &str) -> Vec<migrate::HistoryEntry<String>> {
    store
        .history()
        .into_iter()
        .filter(|e| e.change_id == change_id)
        .collect()
}

// ---------------------------------------------------------------- units

/// Declares a unit that logs its id, writes `<id> = done` through the session, and logs
/// `<id>:rollback` when rolled back.
macro_rules! logging_unit {
    ($name:ident, id = $id:literal $(, $key:ident = $value:tt)*) => {
        #[change_unit(id = $id $(, $key = $value)*)]
        struct $name {
            log: Dep<Recorder>,
        }

        impl $name {
            #[execution]
            async fn execute(&self, session: &mut MemorySession) -> Result {
                self.log.push($id);
                session.insert($id, "done");
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self) -> Result {
                self.log.push(concat!($id, ":rollback"));
                Ok(())
            }
        }
    };
}

logging_unit!(First, id = "first", order = "001", author = "team");
logging_unit!(Second, id = "second", order = "002", author = "team");
logging_unit!(OrderTen, id = "ten", order = "10");
logging_unit!(OrderNine, id = "nine", order = "9");
logging_unit!(TieB, id = "tie-b", order = "5");
logging_unit!(TieA, id = "tie-a", order = "5");
logging_unit!(Always, id = "always", order = "000", run_always = true);
logging_unit!(
    NoTransaction,
    id = "no-transaction",
    order = "003",
    transactional = false
);
logging_unit!(DevOnly, id = "dev-only", order = "001", profiles = ["dev"]);
logging_unit!(
    NotProd,
    id = "not-prod",
    order = "002",
    profiles = ["!prod"]
);

/// Fails in `#[execution]` after writing, with a before-step.
#[change_unit(id = "failing", order = "003", author = "team")]
struct Failing {
    log: Dep<Recorder>,
}

impl Failing {
    #[before_execution]
    async fn before(&self, session: &mut MemorySession) -> Result {
        self.log.push("failing:before");
        session.insert("failing-ddl", "created");
        Ok(())
    }

    #[rollback_before_execution]
    async fn rollback_before(&self, session: &mut MemorySession) -> Result {
        self.log.push("failing:rollback_before");
        session.remove("failing-ddl");
        Ok(())
    }

    #[execution]
    async fn execute(&self, session: &mut MemorySession) -> Result {
        self.log.push("failing:execute");
        session.insert("failing-data", "partial");
        Err("the third-party api is down".into())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut MemorySession) -> Result {
        self.log.push("failing:rollback");
        session.remove("failing-data");
        Ok(())
    }
}

/// Fails, and so does its rollback.
#[change_unit(id = "doubly-failing", order = "003")]
struct DoublyFailing;

impl DoublyFailing {
    #[execution]
    async fn execute(&self) -> Result {
        Err("execution broke".into())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Err("rollback broke too".into())
    }
}

/// Fails without stopping the run.
#[change_unit(id = "tolerated", order = "0015", fail_fast = false)]
struct Tolerated {
    log: Dep<Recorder>,
}

impl Tolerated {
    #[execution]
    async fn execute(&self) -> Result {
        self.log.push("tolerated");
        Err("not important".into())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        self.log.push("tolerated:rollback");
        Ok(())
    }
}

#[change_unit(id = "panicking", order = "004")]
struct Panicking;

impl Panicking {
    #[execution]
    async fn execute(&self) -> Result {
        panic!("index out of range in the unit")
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

logging_unit!(V0, id = "v-0", order = "v-0", system_version = "0");
logging_unit!(V1, id = "v-1", order = "v-1", system_version = "1");
logging_unit!(V11, id = "v-1.1", order = "v-1.1", system_version = "1.1");
logging_unit!(
    V251,
    id = "v-2.5.1",
    order = "v-2.5.1",
    system_version = "2.5.1"
);
logging_unit!(
    V255,
    id = "v-2.5.5",
    order = "v-2.5.5",
    system_version = "2.5.5"
);
logging_unit!(V26, id = "v-2.6", order = "v-2.6", system_version = "2.6");

struct Api {
    name: &'static str,
}

struct Clock;

#[change_unit(id = "needs-api", order = "001")]
struct NeedsApi {
    api: Dep<Api>,
    clock: Option<Dep<Clock>>,
}

impl NeedsApi {
    #[execution]
    async fn execute(&self, api: &Api, log: &Recorder, clock: Option<&Clock>) -> Result {
        log.push(format!(
            "field {} param {} clock {}/{}",
            self.api.name,
            api.name,
            self.clock.is_some(),
            clock.is_some()
        ));
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

struct Mailer;

#[change_unit(id = "needs-mailer", order = "002")]
struct NeedsMailer;

impl NeedsMailer {
    #[execution]
    async fn execute(&self, _mailer: &Mailer, _api: Dep<Api>) -> Result {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Takes the lock over from inside its execution, as a runner elsewhere would.
#[change_unit(id = "lock-thief", order = "001")]
struct LockThief {
    store: Dep<MemoryStore>,
}

impl LockThief {
    #[execution]
    async fn execute(&self, session: &mut MemorySession) -> Result {
        session.insert("thief", "was here");
        self.store.set_lock(Some(LockInfo {
            key: "DEFAULT_KEY".into(),
            owner: "another-runner".into(),
            expires_at: SystemTime::now() + Duration::from_secs(60),
        }));
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

#[change_unit(id = "duplicate", order = "001")]
struct DuplicateOne;

impl DuplicateOne {
    #[execution]
    async fn execute(&self) -> Result {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

#[change_unit(id = "duplicate", order = "002")]
struct DuplicateTwo;

impl DuplicateTwo {
    #[execution]
    async fn execute(&self) -> Result {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Defers two cleanups until it is recorded: the first fails, the second logs the states the
/// history holds for the unit when it runs. Fails after deferring them when `fail` is set.
/// Its rollback defers a cleanup too, and fails after that with [`RollbackFails`].
#[change_unit(id = "deferring", order = "004")]
struct Deferring {
    log: Dep<Recorder>,
    store: Dep<MemoryStore>,
    fail: Dep<bool>,
    rollback_fails: Option<Dep<RollbackFails>>,
}

/// Makes [`Deferring`]'s rollback fail.
#[derive(Clone)]
struct RollbackFails;

impl Deferring {
    #[execution]
    async fn execute(&self, context: &RunContext, session: &mut MemorySession) -> Result {
        self.log
            .push(format!("deferring as {:?}", context.unit_id()));
        session.insert("deferring", "done");
        context.after_recorded(async { Err("the checkpoint is gone already".into()) });
        let (log, store) = (self.log.clone(), self.store.clone());
        context.after_recorded(async move {
            let states: Vec<State> = store
                .history()
                .into_iter()
                .filter(|e| e.change_id == "deferring")
                .map(|e| e.state)
                .collect();
            log.push(format!("cleanup after {states:?}"));
            Ok(())
        });
        if *self.fail {
            return Err("failed after deferring".into());
        }
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, context: &RunContext) -> Result {
        self.log.push("deferring:rollback");
        let (log, store) = (self.log.clone(), self.store.clone());
        context.after_recorded(async move {
            let last = store.history().last().map(|e| e.state);
            log.push(format!("rollback cleanup after {last:?}"));
            Ok(())
        });
        match self.rollback_fails {
            Some(_) => Err("the rollback failed after deferring".into()),
            None => Ok(()),
        }
    }
}

/// Logs, in each of its steps, the run it runs in and the runs the history records the
/// step for.
#[change_unit(id = "remembering", order = "006")]
struct Remembering {
    log: Dep<Recorder>,
}

impl Remembering {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        self.remember("execution", context);
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, context: &RunContext) -> Result {
        self.remember("rollback", context);
        Ok(())
    }

    fn remember(&self, step: &str, context: &RunContext) {
        let run = context.execution_id().unwrap_or("?");
        let recorded_by = context.recorded_by();
        self.log
            .push(format!("{step} in {run} after {recorded_by:?}"));
    }
}

/// A `run_always` unit that defers logging until it is recorded (or, on later runs, until it
/// succeeds).
#[change_unit(id = "deferring-always", order = "005", run_always = true)]
struct DeferringAlways {
    log: Dep<Recorder>,
}

impl DeferringAlways {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        let log = self.log.clone();
        context.after_recorded(async move {
            log.push("always cleanup");
            Ok(())
        });
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

// ---------------------------------------------------------------- ordering and recording

#[tokio::test]
async fn runs_pending_units_in_order_and_records_each() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let report = runner(&store, &log)
        .units([unit::<Second>(), unit::<First>()])
        .run()
        .await
        .unwrap();

    assert_eq!(log.lines(), ["first", "second"]);
    assert_eq!(report.executed(), ["first", "second"]);
    assert_eq!(store.data().len(), 2);
    let history = store.history();
    assert_eq!(history.len(), 2);
    for (entry, (id, method)) in history
        .iter()
        .zip([("first", "execute"), ("second", "execute")])
    {
        assert_eq!(entry.change_id, id);
        assert_eq!(entry.author, "team");
        assert_eq!(entry.state, State::Executed);
        assert_eq!(entry.entry_type, EntryType::Execution);
        assert_eq!(entry.change_set_method, method);
        assert!(entry.change_log_class.ends_with(if id == "first" {
            "::First"
        } else {
            "::Second"
        }));
        assert!(entry.execution_millis >= 0);
        assert_eq!(entry.execution_id, report.execution_id);
        assert_eq!(entry.error_trace, None);
        assert_eq!(entry.checksum.as_ref().map(String::len), Some(16));
    }
}

#[tokio::test]
async fn a_run_starts_one_session_and_a_new_one_after_a_failure() {
    for transactions in [true, false] {
        let (store, log) = (MemoryStore::new(), Recorder::default());
        runner(&store, &log)
            .transactional(transactions)
            .units([unit::<First>(), unit::<Second>(), unit::<OrderNine>()])
            .run()
            .await
            .unwrap();
        let sessions = |store: &MemoryStore| {
            store
                .operations()
                .iter()
                .filter(|&&o| o == "start_session")
                .count()
        };
        assert_eq!(sessions(&store), 1, "transactions: {transactions}");

        // The session of a failed unit is not reused: what it left is gone with it.
        let (store, log) = (MemoryStore::new(), Recorder::default());
        runner(&store, &log)
            .transactional(transactions)
            .units([unit::<First>(), unit::<Tolerated>(), unit::<Second>()])
            .run()
            .await
            .unwrap();
        assert_eq!(log.lines()[..2], ["first", "tolerated"]);
        assert_eq!(store.data().len(), 2, "transactions: {transactions}");
        assert_eq!(sessions(&store), 2, "transactions: {transactions}");
    }
}

#[tokio::test]
async fn order_is_compared_as_plain_strings_with_ties_broken_by_id() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .units([
            unit::<OrderNine>(),
            unit::<OrderTen>(),
            unit::<TieB>(),
            unit::<TieA>(),
        ])
        .run()
        .await
        .unwrap();
    assert_eq!(log.lines(), ["ten", "tie-a", "tie-b", "nine"]);
}

#[tokio::test]
async fn a_second_run_applies_nothing() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .units([unit::<First>()])
        .run()
        .await
        .unwrap();
    let report = runner(&store, &log)
        .units([unit::<First>()])
        .run()
        .await
        .unwrap();

    assert_eq!(log.lines(), ["first"]);
    assert!(report.executed().is_empty());
    let summary = report.to_string();
    let heading = format!("run {} (completed in ", report.execution_id);
    assert!(summary.starts_with(&heading), "{summary}");
    assert!(
        summary.contains("first") && summary.contains("already executed"),
        "{summary}"
    );
    assert_eq!(
        report.unit("first").unwrap().outcome,
        Outcome::Skipped(SkipReason::AlreadyExecuted)
    );
    assert_eq!(store.history().len(), 1);
}

#[tokio::test]
async fn nothing_pending_reads_the_history_once_and_never_touches_the_lock() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .units([unit::<First>(), unit::<Second>()])
        .run()
        .await
        .unwrap();
    let before = store.operations().len();

    runner(&store, &log)
        .units([unit::<First>(), unit::<Second>()])
        .run()
        .await
        .unwrap();
    assert_eq!(store.operations()[before..], ["read_history"]);
}

#[tokio::test]
async fn deferred_cleanups_run_once_the_unit_is_recorded() {
    for strategy in [
        TransactionStrategy::PerChangeUnit,
        TransactionStrategy::PerRun,
    ] {
        let (store, log) = (MemoryStore::new(), Recorder::default());
        runner(&store, &log)
            .dependency(store.clone())
            .dependency(false)
            .transaction_strategy(strategy)
            .units([unit::<Deferring>()])
            .run()
            .await
            .unwrap();
        assert_eq!(
            log.lines(),
            [
                "deferring as Some(\"deferring\")",
                "cleanup after [Executed]"
            ],
            "{strategy:?}: the unit sees its id; the second cleanup runs after the first failed"
        );
        assert_eq!(
            store.data().len(),
            1,
            "{strategy:?}: the unit stays applied"
        );
    }
}

#[tokio::test]
async fn an_undo_runs_the_cleanups_its_rollback_deferred_once_recorded() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let runner = || {
        runner(&store, &log)
            .dependency(store.clone())
            .dependency(false)
            .units([unit::<Deferring>()])
    };
    runner().run().await.unwrap();
    runner().undo_all().await.unwrap();
    assert_eq!(
        log.lines()[2..],
        [
            "deferring:rollback",
            "rollback cleanup after Some(RolledBack)"
        ]
    );
}

#[tokio::test]
async fn a_step_knows_its_run_and_the_runs_that_recorded_it_before() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let runner = || runner(&store, &log).units([unit::<Remembering>()]);
    let applied = runner().run().await.unwrap().execution_id;
    let undone = runner().undo_all().await.unwrap().execution_id;
    let reapplied = runner().run().await.unwrap().execution_id;
    let undone_again = runner().undo_all().await.unwrap().execution_id;
    assert_eq!(
        log.lines(),
        [
            format!("execution in {applied} after []"),
            format!("rollback in {undone} after []"),
            format!("execution in {reapplied} after [{applied:?}]"),
            format!("rollback in {undone_again} after [{undone:?}]"),
        ]
    );
}

#[tokio::test]
async fn a_run_always_unit_runs_its_cleanups_each_time_it_succeeds() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    for _ in 0..2 {
        runner(&store, &log)
            .units([unit::<DeferringAlways>()])
            .run()
            .await
            .unwrap();
    }
    assert_eq!(log.lines(), ["always cleanup", "always cleanup"]);
    assert_eq!(
        entries(&store, "deferring-always").len(),
        1,
        "recorded once"
    );
}

#[tokio::test]
async fn deferred_cleanups_are_dropped_when_the_unit_fails() {
    for transactions in [true, false] {
        let (store, log) = (MemoryStore::new(), Recorder::default());
        let error = runner(&store, &log)
            .dependency(store.clone())
            .dependency(true)
            .transactional(transactions)
            .units([unit::<Deferring>()])
            .run()
            .await
            .unwrap_err();
        assert_eq!(error.as_execution().unwrap().unit_id, "deferring");
        // Without a transaction the rollback runs; its own cleanup runs once it is recorded.
        let expected: &[&str] = if transactions {
            &["deferring as Some(\"deferring\")"]
        } else {
            &[
                "deferring as Some(\"deferring\")",
                "deferring:rollback",
                "rollback cleanup after Some(RolledBack)",
            ]
        };
        assert_eq!(log.lines(), expected, "transactions: {transactions}");
    }
}

#[tokio::test]
async fn a_failed_rollback_drops_its_cleanups_too() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let error = runner(&store, &log)
        .dependency(store.clone())
        .dependency(true)
        .dependency(RollbackFails)
        .transactional(false)
        .units([unit::<Deferring>()])
        .run()
        .await
        .unwrap_err();
    let error = error.as_execution().unwrap();
    assert_eq!(error.rollback_errors.len(), 1, "{error:?}");
    assert_eq!(
        log.lines(),
        ["deferring as Some(\"deferring\")", "deferring:rollback"]
    );
    assert_eq!(
        entries(&store, "deferring")
            .iter()
            .map(|e| e.state)
            .collect::<Vec<_>>(),
        [State::RollbackFailed]
    );
}

// ---------------------------------------------------------------- filters

#[tokio::test]
async fn system_version_window_runs_start_inclusive_to_end_exclusive() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let all = [
        unit::<V0>(),
        unit::<V1>(),
        unit::<V11>(),
        unit::<V251>(),
        unit::<V255>(),
        unit::<V26>(),
    ];
    let report = runner(&store, &log)
        .units(all)
        .system_versions("1", "2.5.5")
        .run()
        .await
        .unwrap();
    assert_eq!(log.lines(), ["v-1", "v-1.1", "v-2.5.1"]);
    assert_eq!(
        report.unit("v-2.5.5").unwrap().outcome,
        Outcome::Skipped(SkipReason::SystemVersion {
            version: "2.5.5".into()
        })
    );
    assert_eq!(report.skipped().count(), 3);
}

#[tokio::test]
async fn profiles_select_and_exclude_units() {
    let units = [unit::<DevOnly>(), unit::<NotProd>()];
    let cases: [(&[&str], &[&str]); 3] = [
        (&["default"], &["not-prod"]),
        (&["dev"], &["dev-only", "not-prod"]),
        (&["dev", "prod"], &["dev-only"]),
    ];
    for (profiles, expected) in cases {
        let (store, log) = (MemoryStore::new(), Recorder::default());
        let report = runner(&store, &log)
            .units(units)
            .profiles(profiles.iter().copied())
            .run()
            .await
            .unwrap();
        assert_eq!(log.lines(), expected, "profiles {profiles:?}");
        assert!(report
            .skipped()
            .all(|(_, reason)| *reason == SkipReason::Profile));
    }
}

#[tokio::test]
async fn track_ignored_records_filtered_units_as_ignored() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .units([unit::<V0>(), unit::<V26>()])
        .system_versions("0", "2")
        .track_ignored(true)
        .run()
        .await
        .unwrap();
    let ignored = entries(&store, "v-2.6");
    assert_eq!(ignored.len(), 1);
    assert_eq!(ignored[0].state, State::Ignored);
    assert_eq!(ignored[0].execution_millis, -1);
    assert_eq!(entries(&store, "v-0")[0].state, State::Executed);
}

#[tokio::test]
async fn ignored_units_are_not_recorded_by_default() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .units([unit::<V0>(), unit::<V26>()])
        .system_versions("0", "2")
        .run()
        .await
        .unwrap();
    assert!(entries(&store, "v-2.6").is_empty());
}

// ---------------------------------------------------------------- dependencies

#[tokio::test]
async fn fields_and_parameters_are_injected_by_type() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .dependency(Api { name: "crm" })
        .units([unit::<NeedsApi>()])
        .run()
        .await
        .unwrap();
    assert_eq!(log.lines(), ["field crm param crm clock false/false"]);
}

#[tokio::test]
async fn optional_dependencies_are_injected_when_registered() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .dependency(Api { name: "crm" })
        .dependency(Clock)
        .units([unit::<NeedsApi>()])
        .run()
        .await
        .unwrap();
    assert_eq!(log.lines(), ["field crm param crm clock true/true"]);
}

#[tokio::test]
async fn every_missing_dependency_is_reported_before_anything_runs() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let error = runner(&store, &log)
        .units([unit::<NeedsApi>(), unit::<NeedsMailer>()])
        .run()
        .await
        .unwrap_err();

    let Error::MissingDependencies(missing) = &error else {
        panic!("expected missing dependencies, got {error}");
    };
    let pairs: Vec<(&str, &str)> = missing
        .iter()
        .map(|m| (m.unit_id.as_str(), m.type_name.rsplit("::").next().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("needs-api", "Api"),
            ("needs-api", "Api"),
            ("needs-mailer", "Mailer"),
            ("needs-mailer", "Api")
        ]
    );
    let message = error.to_string();
    assert!(
        message.contains("change unit `needs-mailer` needs `"),
        "{message}"
    );
    assert!(log.lines().is_empty());
    assert!(store.history().is_empty());
    assert_eq!(
        store.operations(),
        ["read_history"],
        "only the history was read: no index, no lock"
    );
}

// ---------------------------------------------------------------- failures and rollback

#[tokio::test]
async fn without_transactions_a_failure_runs_the_rollbacks_in_reverse_order() {
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let error = runner(&store, &log)
        .units([unit::<First>(), unit::<Failing>(), unit::<OrderNine>()])
        .run()
        .await
        .unwrap_err();

    assert_eq!(
        log.lines(),
        [
            "first",
            "failing:before",
            "failing:execute",
            "failing:rollback",
            "failing:rollback_before"
        ]
    );
    let failure = error.as_execution().expect("an execution error");
    assert_eq!(failure.unit_id, "failing");
    assert_eq!(failure.step, Step::Execution);
    assert!(failure.rolled_back);
    assert!(format!("{:#}", anyhow::Error::from(error)).contains("the third-party api is down"));
    // The failed unit's data is undone; the earlier unit's stays; the later unit never ran.
    assert_eq!(store.data().keys().collect::<Vec<_>>(), ["first"]);
}

#[tokio::test]
async fn a_rolled_back_step_is_updated_in_place() {
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let report_err = runner(&store, &log).units([unit::<Failing>()]).run().await;
    assert!(report_err.is_err());

    let execution = entries(&store, "failing");
    assert_eq!(
        execution.len(),
        1,
        "FAILED becomes ROLLED_BACK in the same entry"
    );
    assert_eq!(execution[0].state, State::RolledBack);
    assert_eq!(execution[0].execution_millis, -1);
    let trace = execution[0].error_trace.as_deref().unwrap();
    assert!(
        trace.starts_with(r#"{"execution-error":"the third-party api is down""#),
        "{trace}"
    );

    let before = entries(&store, "failing_before");
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].entry_type, EntryType::BeforeExecution);
    assert_eq!(before[0].state, State::RolledBack);
    assert_eq!(before[0].change_set_method, "before");
}

#[tokio::test]
async fn a_failed_rollback_is_recorded_and_both_errors_are_returned() {
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let error = runner(&store, &log)
        .units([unit::<DoublyFailing>()])
        .run()
        .await
        .unwrap_err();

    let failure = error.as_execution().unwrap();
    assert!(!failure.rolled_back);
    assert_eq!(failure.source.to_string(), "execution broke");
    assert_eq!(failure.rollback_errors.len(), 1);
    assert_eq!(failure.rollback_errors[0].0, Step::RollbackExecution);
    let message = error.to_string();
    assert_eq!(
        message,
        "change unit `doubly-failing`: `#[rollback_execution]` failed (rollback broke too) \
         after it failed in `#[execution]`",
        "the message says its own part; the execution error is its source"
    );
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("execution broke"));
    assert!(
        format!("{:#}", anyhow::Error::from(error))
            .ends_with("after it failed in `#[execution]`: execution broke"),
        "the chain names the execution's error as the execution's cause"
    );

    let entry = &entries(&store, "doubly-failing")[0];
    assert_eq!(entry.state, State::RollbackFailed);
    assert_eq!(
        entry.error_trace.as_deref(),
        Some(r#"{"execution-error":"execution broke","rollback-error":"rollback broke too"}"#)
    );
}

#[tokio::test]
async fn in_a_transaction_a_failure_aborts_and_only_the_before_step_is_rolled_back() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let error = runner(&store, &log)
        .units([unit::<Failing>()])
        .run()
        .await
        .unwrap_err();

    assert_eq!(
        log.lines(),
        [
            "failing:before",
            "failing:execute",
            "failing:rollback_before"
        ],
        "the transaction is aborted instead of calling #[rollback_execution]"
    );
    assert!(
        store.data().is_empty(),
        "aborted writes and the undone before-step leave nothing"
    );
    assert!(error.as_execution().unwrap().rolled_back);
    assert_eq!(entries(&store, "failing")[0].state, State::Failed);
    assert_eq!(
        entries(&store, "failing_before")[0].state,
        State::RolledBack
    );
}

#[tokio::test]
async fn the_next_run_resumes_at_the_failed_unit() {
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let first_try = runner(&store, &log)
        .units([unit::<First>(), unit::<DoublyFailing>()])
        .run()
        .await;
    assert!(first_try.is_err());

    let plan = runner(&store, &log)
        .units([unit::<First>(), unit::<DoublyFailing>()])
        .plan()
        .await
        .unwrap();
    let pending: Vec<&str> = plan.pending().map(|p| p.unit.id()).collect();
    assert_eq!(pending, ["doubly-failing"]);
}

#[tokio::test]
async fn a_unit_without_fail_fast_fails_and_the_run_goes_on() {
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let report = runner(&store, &log)
        .units([unit::<First>(), unit::<Tolerated>(), unit::<Second>()])
        .run()
        .await
        .unwrap();
    assert_eq!(
        log.lines(),
        ["first", "tolerated", "tolerated:rollback", "second"]
    );
    assert!(matches!(
        &report.unit("tolerated").unwrap().outcome,
        Outcome::Failed { rolled_back: true, error } if error.contains("not important")
    ));
    assert_eq!(report.executed(), ["first", "second"]);
}

#[tokio::test]
async fn a_panicking_unit_is_recorded_as_failed_and_reported() {
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let error = runner(&store, &log)
        .units([unit::<Panicking>()])
        .run()
        .await
        .unwrap_err();
    let message = format!("{:#}", anyhow::Error::from(error));
    assert!(
        message.contains("failed in `#[execution]`: panicked: index out of range in the unit"),
        "{message}"
    );
    assert_eq!(entries(&store, "panicking")[0].state, State::RolledBack);
    assert_eq!(store.lock_info(), None, "the lock is released");
}

#[tokio::test]
async fn the_lock_is_released_when_a_unit_fails() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let result = runner(&store, &log).units([unit::<Failing>()]).run().await;
    assert!(result.is_err());
    assert_eq!(store.lock_info(), None);
    assert!(store.operations().contains(&"release_lock"));
}

// ---------------------------------------------------------------- run_always

#[tokio::test]
async fn run_always_units_run_every_time_and_are_recorded_once() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    for _ in 0..3 {
        runner(&store, &log)
            .units([unit::<Always>()])
            .run()
            .await
            .unwrap();
    }
    assert_eq!(log.lines(), ["always", "always", "always"]);
    assert_eq!(entries(&store, "always").len(), 1);
    let report = runner(&store, &log)
        .units([unit::<Always>()])
        .run()
        .await
        .unwrap();
    assert_eq!(
        report.unit("always").unwrap().outcome,
        Outcome::ExecutedAgain
    );
}

// ---------------------------------------------------------------- transactions

#[tokio::test]
async fn transient_commit_errors_are_retried() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    store.fail_next_commits(2);
    runner(&store, &log)
        .units([unit::<First>()])
        .run()
        .await
        .unwrap();

    assert_eq!(
        log.lines(),
        ["first", "first", "first"],
        "the unit is retried whole"
    );
    assert_eq!(entries(&store, "first").len(), 1);
    assert_eq!(store.data()["first"], "done");
}

#[tokio::test]
async fn forcing_transactions_off_runs_rollback_methods() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let result = runner(&store, &log)
        .transactional(false)
        .units([unit::<Failing>()])
        .run()
        .await;
    assert!(result.is_err());
    assert!(log.lines().contains(&"failing:rollback".to_owned()));
    assert!(!store.operations().contains(&"start_transaction"));
}

#[tokio::test]
async fn forcing_transactions_on_a_store_without_them_fails_before_running() {
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let error = runner(&store, &log)
        .transactional(true)
        .units([unit::<First>()])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::TransactionsUnsupported { .. }),
        "{error}"
    );
    assert!(log.lines().is_empty());
}

#[tokio::test]
async fn one_transaction_per_run_commits_all_or_nothing() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let error = runner(&store, &log)
        .transaction_strategy(TransactionStrategy::PerRun)
        .units([unit::<First>(), unit::<Second>(), unit::<Failing>()])
        .run()
        .await
        .unwrap_err();
    assert_eq!(error.as_execution().unwrap().unit_id, "failing");
    assert!(
        store.data().is_empty(),
        "the earlier units' writes are aborted too"
    );
    assert!(entries(&store, "first").is_empty());

    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .transaction_strategy(TransactionStrategy::PerRun)
        .units([unit::<First>(), unit::<Second>()])
        .run()
        .await
        .unwrap();
    assert_eq!(store.data().len(), 2);
    assert_eq!(store.history().len(), 2);
    assert_eq!(
        store
            .operations()
            .iter()
            .filter(|op| **op == "commit_transaction")
            .count(),
        1
    );
}

#[tokio::test]
async fn one_transaction_per_run_refuses_a_unit_that_runs_without_one() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let per_run = || {
        runner(&store, &log)
            .transaction_strategy(TransactionStrategy::PerRun)
            .units([unit::<First>(), unit::<NoTransaction>()])
    };
    for error in [
        per_run().plan().await.unwrap_err(),
        per_run().run().await.unwrap_err(),
    ] {
        let Error::InvalidConfig { option, reason } = &error else {
            panic!("expected InvalidConfig, got {error:?}");
        };
        assert_eq!(*option, "transaction_strategy");
        assert!(
            reason.contains("change unit `no-transaction` sets `transactional = false`"),
            "{reason}"
        );
    }
    assert!(log.lines().is_empty(), "nothing ran");
    assert!(store.history().is_empty());

    // Once that unit is applied, the run-wide transaction holds every pending unit.
    runner(&store, &log)
        .units([unit::<NoTransaction>()])
        .run()
        .await
        .unwrap();
    per_run().run().await.unwrap();
    assert_eq!(log.lines(), ["no-transaction", "first"]);
}

// ---------------------------------------------------------------- lock
//
// The tests that wait for a lease run on tokio's paused clock: the in-memory store measures
// expiry on tokio's clock, so seconds of waiting pass at once and always in the same order.

fn held_by_other(for_how_long: Duration) -> LockInfo {
    LockInfo {
        key: "DEFAULT_KEY".into(),
        owner: "another-runner".into(),
        expires_at: SystemTime::now() + for_how_long,
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_is_an_error_after_quit_trying_after() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    store.set_lock(Some(held_by_other(Duration::from_secs(60))));
    let error = runner(&store, &log)
        .lock_quit_trying_after(Duration::from_secs(1))
        .lock_try_frequency(Duration::from_millis(500))
        .units([unit::<First>()])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Locked { owner, .. } if owner == "another-runner"),
        "{error}"
    );
    assert!(log.lines().is_empty());
    assert_eq!(
        store.lock_info().unwrap().owner,
        "another-runner",
        "never stolen"
    );
}

#[tokio::test]
async fn a_held_lock_without_fail_if_locked_returns_a_report_that_nothing_ran() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    store.set_lock(Some(held_by_other(Duration::from_secs(60))));
    let report = runner(&store, &log)
        .fail_if_locked(false)
        .lock_quit_trying_after(Duration::ZERO)
        .units([unit::<First>()])
        .run()
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::LockUnavailable);
    assert_eq!(report.unit("first").unwrap().outcome, Outcome::NotRun);
    assert!(log.lines().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_runner_waits_for_an_expiring_lock_and_then_takes_it() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    store.set_lock(Some(held_by_other(Duration::from_millis(1200))));
    runner(&store, &log)
        .lock_quit_trying_after(Duration::from_secs(10))
        .units([unit::<First>()])
        .run()
        .await
        .unwrap();
    assert_eq!(log.lines(), ["first"]);
    assert_eq!(store.lock_info(), None);
}

/// The in-memory store does not make an outside write wait for an open transaction, as
/// MongoDB does, so the thief's takeover lands inside the unit; the next unit's fence finds it.
#[tokio::test]
async fn a_lock_taken_over_mid_run_stops_the_run_at_the_next_fence() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let error = runner(&store, &log)
        .units([unit::<LockThief>(), unit::<Second>()])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::LockLost { unit_id: Some(id), during: "at the transaction fence of" } if id == "second"),
        "{error}"
    );
    assert!(log.lines().is_empty(), "the next unit never ran");
    assert_eq!(
        store
            .history()
            .iter()
            .map(|e| e.change_id.as_str())
            .collect::<Vec<_>>(),
        ["lock-thief"],
        "nothing recorded after the loss"
    );
    assert_eq!(
        store.lock_info().unwrap().owner,
        "another-runner",
        "the new owner keeps it"
    );
}

#[tokio::test(start_paused = true)]
async fn without_transactions_a_runner_that_lost_the_lock_records_nothing_more() {
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let runner = runner(&store, &log)
        .lock_lease(Duration::from_secs(3))
        .units([unit::<LockThief>(), unit::<Slow>(), unit::<Second>()]);
    let error = runner.run().await.unwrap_err();
    assert!(
        matches!(&error, Error::LockLost { unit_id: Some(id), during: "before recording" } if id == "slow"),
        "{error}"
    );
    assert_eq!(log.lines(), ["slow"], "slow finished, second never started");
    assert!(
        store.history().iter().all(|e| e.change_id != "slow"),
        "the unit that outlived the lock is not recorded: {:?}",
        store.history()
    );
}

/// Outlasts one lock refresh period (a third of the 3 s lease).
#[change_unit(id = "slow", order = "001-slow")]
struct Slow {
    log: Dep<Recorder>,
}

impl Slow {
    #[execution]
    async fn execute(&self) -> Result {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.log.push("slow");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

// ---------------------------------------------------------------- configuration and registry

#[tokio::test]
async fn a_disabled_runner_does_nothing() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let report = runner(&store, &log)
        .enabled(false)
        .units([unit::<First>()])
        .run()
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Disabled);
    assert!(store.operations().is_empty());
}

#[tokio::test]
async fn invalid_options_are_rejected_before_any_store_operation() {
    let cases: Vec<(Runner<MemoryStore>, &str)> = vec![
        (
            Runner::new(MemoryStore::new()).lock_lease(Duration::from_secs(2)),
            "lock_lease",
        ),
        (
            Runner::new(MemoryStore::new()).lock_try_frequency(Duration::from_millis(100)),
            "lock_try_frequency",
        ),
        (
            Runner::new(MemoryStore::new()).system_versions("1..2", "3"),
            "system_versions",
        ),
    ];
    for (runner, option) in cases {
        let error = runner.units([unit::<First>()]).run().await.unwrap_err();
        assert!(
            matches!(&error, Error::InvalidConfig { option: o, .. } if *o == option),
            "{option}: {error}"
        );
    }
}

/// Declares the change set `twice` in two impl blocks: each block checks its own ids only.
#[change_log]
struct TwiceDeclared;

#[change_log]
impl TwiceDeclared {
    #[change_set(id = "twice", author = "team")]
    async fn first_declaration(&self) -> Result {
        Ok(())
    }
}

#[change_log]
impl TwiceDeclared {
    #[change_set(id = "twice", author = "team")]
    async fn second_declaration(&self) -> Result {
        Ok(())
    }
}

#[tokio::test]
async fn duplicate_change_sets_name_both_methods() {
    let error = Runner::new(MemoryStore::new())
        .units(TwiceDeclared::change_sets())
        .run()
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("TwiceDeclared::first_declaration`")
            && message.contains("TwiceDeclared::second_declaration`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_unit_listed_twice_is_named_as_such() {
    let error = Runner::new(MemoryStore::new())
        .units([unit::<DuplicateOne>(), unit::<DuplicateOne>()])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidConfig { option: "units", reason }
            if reason == "change unit `duplicate` is in the list twice"),
        "{error}"
    );
}

#[tokio::test]
async fn duplicate_ids_name_both_types() {
    let error = Runner::new(MemoryStore::new())
        .units([unit::<DuplicateOne>(), unit::<DuplicateTwo>()])
        .run()
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("`duplicate`"), "{message}");
    assert!(
        message.contains("DuplicateOne") && message.contains("DuplicateTwo"),
        "{message}"
    );
}

#[tokio::test]
async fn history_of_units_missing_from_the_binary_is_an_error() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .units([unit::<First>(), unit::<Second>()])
        .run()
        .await
        .unwrap();
    let error = runner(&store, &log)
        .units([unit::<First>()])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnknownHistory { ids } if ids[0].contains("`second`")),
        "{error}"
    );
}

#[tokio::test]
async fn history_of_deleted_units_is_accepted_when_allowed() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .units([unit::<First>(), unit::<Second>()])
        .run()
        .await
        .unwrap();
    let report = runner(&store, &log)
        .allow_unknown_history(true)
        .units([unit::<First>(), unit::<OrderNine>()])
        .run()
        .await
        .unwrap();
    assert_eq!(report.executed(), ["nine"]);
    assert_eq!(
        store.history().len(),
        3,
        "the deleted unit's history is kept"
    );
}

#[tokio::test]
async fn metadata_host_and_execution_id_are_recorded_on_every_entry() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    let report = runner(&store, &log)
        .metadata("deployed-by-ci".to_owned())
        .service_identifier("client-service")
        .units([unit::<First>(), unit::<Second>()])
        .run()
        .await
        .unwrap();
    for entry in store.history() {
        assert_eq!(entry.metadata.as_deref(), Some("deployed-by-ci"));
        assert!(entry.execution_hostname.ends_with("-client-service"));
        assert_eq!(entry.execution_id, report.execution_id);
    }
}

#[tokio::test]
async fn default_author_applies_to_units_without_one() {
    let (store, log) = (MemoryStore::new(), Recorder::default());
    runner(&store, &log)
        .default_author("platform")
        .units([unit::<OrderNine>(), unit::<First>()])
        .run()
        .await
        .unwrap();
    assert_eq!(entries(&store, "nine")[0].author, "platform");
    assert_eq!(entries(&store, "first")[0].author, "team");
}

#[tokio::test]
async fn events_report_start_success_and_failure() {
    let events = Recorder::default();
    let (store, log) = (MemoryStore::without_transactions(), Recorder::default());
    let (e1, e2, e3) = (events.clone(), events.clone(), events.clone());
    let result = runner(&store, &log)
        .on_started(move |e| {
            if let Event::Started { pending, .. } = e {
                e1.push(format!("started {pending:?}"));
            }
        })
        .on_success(move |_| e2.push("success"))
        .on_failure(move |e| {
            if let Event::Failed(error) = e {
                e3.push(format!("failure {}", error.as_execution().unwrap().unit_id));
            }
        })
        .units([unit::<First>(), unit::<DoublyFailing>()])
        .run()
        .await;
    assert!(result.is_err());
    assert_eq!(
        events.lines(),
        [
            r#"started ["first", "doubly-failing"]"#,
            "failure doubly-failing"
        ]
    );
}
