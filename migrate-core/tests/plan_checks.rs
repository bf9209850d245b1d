//! What the runner checks before it runs anything, and what `status` says about it: options,
//! ids that clash with a before-step's history id, history of units the binary does not
//! contain, numeric orders of mixed widths, `run_always` units. Over the in-memory store.

// Generated code names `::migrate::__private`; this crate provides all of it.
extern crate migrate_core as migrate;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use migrate::memory::{MemorySession, MemoryStore};
use migrate::{
    BoxError, ChangeUnit, ChecksumPolicy, Dep, DescribeUnit, EntryType, Error, LockInfo, Runner,
    Severity, State, UnitState,
};
use migrate_macros::{
    before_execution, change_unit, execution, rollback_before_execution, rollback_execution,
};

type Result<T = (), E = BoxError> = std::result::Result<T, E>;

fn unit<T: DescribeUnit>() -> &'static ChangeUnit {
    T::change_unit()
}

/// Declares a unit that writes `<id> = done` and removes it when rolled back.
macro_rules! unit {
    ($name:ident, id = $id:literal $(, $key:ident = $value:tt)*) => {
        #[change_unit(id = $id $(, $key = $value)*)]
        struct $name;

        impl $name {
            #[execution]
            async fn execute(&self, session: &mut MemorySession) -> Result {
                session.insert($id, "done");
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self, session: &mut MemorySession) -> Result {
                session.remove($id);
                Ok(())
            }
        }
    };
}

unit!(Alpha, id = "alpha", order = "001", author = "team");
unit!(Beta, id = "beta", order = "002", author = "team");
unit!(AlphaByOther, id = "alpha", order = "001", author = "other");
unit!(NamedLikeBefore, id = "x_before", order = "002");
unit!(
    NamedLikeBeforeByOther,
    id = "x_before",
    order = "002",
    author = "other"
);
unit!(Order01, id = "o-01", order = "01");
unit!(
    DevNotProd,
    id = "dev-not-prod",
    order = "03",
    profiles = ["dev", "!prod"]
);
unit!(Order05, id = "o-05", order = "05");
unit!(Order9, id = "o-9", order = "9");
unit!(Order10, id = "o-10", order = "10");
unit!(Order11, id = "o-11", order = "11");
unit!(Order12, id = "o-12", order = "12");
unit!(Order2, id = "o-2", order = "2");
unit!(Order3, id = "o-3", order = "3");
unit!(Order4, id = "o-4", order = "4");

/// A unit with a before-step, whose history id is `x_before`.
#[change_unit(id = "x", order = "001")]
struct WithBefore;

impl WithBefore {
    #[before_execution]
    async fn before(&self, session: &mut MemorySession) -> Result {
        session.insert("x-ddl", "done");
        Ok(())
    }

    #[rollback_before_execution]
    async fn rollback_before(&self, session: &mut MemorySession) -> Result {
        session.remove("x-ddl");
        Ok(())
    }

    #[execution]
    async fn execute(&self, session: &mut MemorySession) -> Result {
        session.insert("x", "done");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut MemorySession) -> Result {
        session.remove("x");
        Ok(())
    }
}

/// Makes [`Always`] fail while it is on.
#[derive(Default)]
struct Broken(AtomicBool);

/// Runs on every run; fails while [`Broken`] is on.
#[change_unit(id = "always", order = "003", run_always = true)]
struct Always {
    broken: Dep<Broken>,
}

impl Always {
    #[execution]
    async fn execute(&self, session: &mut MemorySession) -> Result {
        if self.broken.0.load(Ordering::SeqCst) {
            return Err("the cache is down".into());
        }
        session.insert("always", "done");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut MemorySession) -> Result {
        session.remove("always");
        Ok(())
    }
}

// ---------------------------------------------------------------- before-step id clash

#[tokio::test]
async fn a_unit_with_the_id_of_another_units_before_step_is_rejected_before_anything_runs() {
    let store = MemoryStore::new();
    let runner =
        || Runner::new(store.clone()).units([unit::<WithBefore>(), unit::<NamedLikeBefore>()]);
    let error = runner().run().await.unwrap_err();
    assert!(
        matches!(&error, Error::BeforeStepIdClash { id, before_of, .. } if id == "x_before" && before_of == "x"),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("`x_before`")
            && message.contains("NamedLikeBefore")
            && message.contains("`x`")
            && message.contains("WithBefore"),
        "{message}"
    );
    assert!(store.operations().is_empty(), "nothing touched the store");
    assert!(store.history().is_empty());

    let validation = runner().validate();
    let errors: Vec<_> = validation.errors().collect();
    assert_eq!(errors.len(), 1, "{validation}");
    assert_eq!(errors[0].unit.as_deref(), Some("x_before"), "{validation}");
}

#[tokio::test]
async fn the_before_step_id_of_another_author_does_not_clash() {
    let store = MemoryStore::new();
    let report = Runner::new(store.clone())
        .units([unit::<WithBefore>(), unit::<NamedLikeBeforeByOther>()])
        .run()
        .await
        .unwrap();
    assert_eq!(report.executed(), ["x", "x_before"]);
}

// ---------------------------------------------------------------- options

#[tokio::test]
async fn a_system_version_start_not_below_the_end_is_invalid_before_any_store_operation() {
    for (start, end) in [("2", "1"), ("1.0", "1")] {
        let store = MemoryStore::new();
        let runner = || {
            Runner::new(store.clone())
                .system_versions(start, end)
                .units([unit::<Alpha>()])
        };
        let error = runner().run().await.unwrap_err();
        assert!(
            matches!(
                &error,
                Error::InvalidConfig {
                    option: "system_versions",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains(&format!("`{start}`")), "{error}");
        assert!(store.operations().is_empty(), "nothing touched the store");

        let validation = runner().validate();
        assert!(
            validation
                .errors()
                .any(|f| f.message.contains("`system_versions`")),
            "{validation}"
        );
    }
}

#[tokio::test]
async fn an_empty_units_list_is_an_error_about_that_list() {
    let error = Runner::new(MemoryStore::new())
        .units([])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::InvalidConfig {
                option: "units",
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("`Runner::units` is empty"), "{message}");
    assert!(!message.contains("linker"), "{message}");
}

#[tokio::test]
async fn an_active_profile_must_be_a_name() {
    for profile in ["", "!dev", "dev ops"] {
        let store = MemoryStore::new();
        let error = Runner::new(store.clone())
            .units([unit::<Order9>()])
            .profiles([profile])
            .run()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidConfig { option: "profiles", reason }
                if reason.starts_with(&format!("`{profile}` is not a profile name"))),
            "{error}"
        );
        assert!(store.history().is_empty());
    }
    Runner::new(MemoryStore::new())
        .units([unit::<Order9>()])
        .profiles(["dev", "prod"])
        .run()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_unit_kept_out_of_an_active_profile_is_not_called_inactive() {
    let plan = Runner::new(MemoryStore::new())
        .units([unit::<DevNotProd>()])
        .profiles(["dev", "prod"])
        .plan()
        .await
        .unwrap();
    let text = plan.to_string();
    assert!(
        text.contains("skip: not selected by the active profiles"),
        "{text}"
    );
}

#[tokio::test]
async fn an_empty_default_author_is_rejected() {
    for author in ["", "  \t"] {
        let store = MemoryStore::new();
        let runner = || {
            Runner::new(store.clone())
                .default_author(author)
                .units([unit::<NamedLikeBefore>()])
        };
        let error = runner().run().await.unwrap_err();
        assert!(
            matches!(
                &error,
                Error::InvalidConfig {
                    option: "default_author",
                    ..
                }
            ),
            "{author:?}: {error}"
        );
        assert!(store.operations().is_empty(), "nothing touched the store");
        assert!(!runner().validate().is_valid());
    }
}

#[tokio::test]
async fn validate_reports_every_invalid_option() {
    let validation = Runner::new(MemoryStore::new())
        .lock_lease(Duration::from_secs(1))
        .system_versions("3", "2")
        .default_author("")
        .units([unit::<Alpha>()])
        .validate();
    let errors: Vec<_> = validation.errors().map(|f| f.message.as_str()).collect();
    assert_eq!(errors.len(), 3, "{validation}");
    for option in ["lock_lease", "system_versions", "default_author"] {
        assert!(
            errors.iter().any(|e| e.contains(&format!("`{option}`"))),
            "{option}: {validation}"
        );
    }
}

// ---------------------------------------------------------------- unknown history

#[tokio::test]
async fn a_unit_undone_then_deleted_does_not_block_later_runs() {
    let store = MemoryStore::new();
    Runner::new(store.clone())
        .units([unit::<Alpha>(), unit::<Beta>()])
        .run()
        .await
        .unwrap();
    Runner::new(store.clone())
        .units([unit::<Alpha>(), unit::<Beta>()])
        .undo_to("beta")
        .await
        .unwrap();

    // `beta` is deleted from the code: its history says it is not applied.
    let runner = || Runner::new(store.clone()).units([unit::<Alpha>()]);
    runner().run().await.unwrap();
    runner().plan().await.unwrap();
    let status = runner().status().await.unwrap();
    assert!(status.is_up_to_date(), "{status}");
    assert_eq!(status.unknown.len(), 1, "{status}");
    assert!(!status.unknown[0].blocks_run, "{status}");
}

#[tokio::test]
async fn an_applied_unit_deleted_from_the_code_still_blocks_runs() {
    let store = MemoryStore::new();
    Runner::new(store.clone())
        .units([unit::<Alpha>(), unit::<Beta>()])
        .run()
        .await
        .unwrap();
    let error = Runner::new(store.clone())
        .units([unit::<Alpha>()])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnknownHistory { ids } if ids.len() == 1 && ids[0].contains("`beta` by `team`")),
        "{error}"
    );
}

#[tokio::test]
async fn history_of_the_same_id_by_another_author_is_unknown() {
    let store = MemoryStore::new();
    Runner::new(store.clone())
        .units([unit::<Alpha>()])
        .run()
        .await
        .unwrap();
    let runner = || Runner::new(store.clone()).units([unit::<AlphaByOther>()]);

    let error = runner().run().await.unwrap_err();
    assert!(
        matches!(&error, Error::UnknownHistory { ids } if ids.len() == 1 && ids[0].contains("`alpha` by `team`")),
        "{error}"
    );
    assert_eq!(store.history().len(), 1, "nothing ran");

    let status = runner().status().await.unwrap();
    assert_eq!(status.unknown.len(), 1, "{status}");
    assert_eq!(status.unknown[0].author, "team", "{status}");

    let report = runner().allow_unknown_history(true).run().await.unwrap();
    assert_eq!(report.executed(), ["alpha"]);
}

#[tokio::test]
async fn status_is_not_up_to_date_while_a_run_would_refuse_the_history() {
    let store = MemoryStore::new();
    Runner::new(store.clone())
        .units([unit::<Alpha>(), unit::<Beta>()])
        .run()
        .await
        .unwrap();
    let runner = || Runner::new(store.clone()).units([unit::<Alpha>()]);

    let status = runner().status().await.unwrap();
    assert_eq!(status.pending().count(), 0, "{status}");
    assert!(!status.is_up_to_date(), "{status}");
    let blocking: Vec<_> = status.blocking().map(|e| e.id.as_str()).collect();
    assert_eq!(blocking, ["beta"], "{status}");
    assert!(
        status.to_string().contains("a run refuses to start"),
        "{status}"
    );

    let allowed = runner().allow_unknown_history(true).status().await.unwrap();
    assert!(allowed.is_up_to_date(), "{allowed}");
    assert_eq!(allowed.blocking().count(), 0, "{allowed}");
}

// ---------------------------------------------------------------- orders

#[tokio::test]
async fn a_unit_that_runs_before_many_smaller_orders_names_the_first_three() {
    let units = [
        unit::<Order10>(),
        unit::<Order2>(),
        unit::<Order3>(),
        unit::<Order4>(),
        unit::<Order9>(),
    ];
    let runner = || Runner::new(MemoryStore::new()).units(units);
    let validation = runner().validate();
    let warning = validation
        .warnings()
        .find(|f| f.unit.as_deref() == Some("o-10"))
        .expect("`10` runs before smaller numbers");
    assert!(
        warning.message.contains(
            "runs before `2` (unit `o-2`), `3` (unit `o-3`), `4` (unit `o-4`) and 1 more"
        ),
        "{validation}"
    );
    let status = runner().status().await.unwrap();
    let ten = status.unit("o-10").unwrap();
    assert_eq!(ten.runs_before_smaller_orders, ["o-2", "o-3", "o-4"]);
    assert_eq!(ten.runs_before_smaller_count, 4);
    assert!(
        ten.detail()
            .contains("runs before `o-2`, `o-3`, `o-4` and 1 more"),
        "{status}"
    );
}

#[tokio::test]
async fn every_numeric_order_that_runs_before_a_smaller_one_is_flagged() {
    let units = [
        unit::<Order01>(),
        unit::<Order05>(),
        unit::<Order9>(),
        unit::<Order10>(),
        unit::<Order11>(),
        unit::<Order12>(),
    ];
    let runner = || Runner::new(MemoryStore::new()).units(units);

    let validation = runner().validate();
    let mut flagged: Vec<_> = validation
        .warnings()
        .filter(|f| f.message.contains("runs before `9`"))
        .filter_map(|f| f.unit.as_deref())
        .collect();
    flagged.sort_unstable();
    assert_eq!(flagged, ["o-10", "o-11", "o-12"], "{validation}");
    assert!(
        validation
            .warnings()
            .all(|f| f.severity == Severity::Warning),
        "{validation}"
    );

    let status = runner().status().await.unwrap();
    let misordered: Vec<_> = status
        .misordered()
        .map(|u| (u.id.as_str(), u.runs_before_smaller_orders.clone()))
        .collect();
    assert_eq!(
        misordered,
        [
            ("o-10", vec!["o-9".to_owned()]),
            ("o-11", vec!["o-9".to_owned()]),
            ("o-12", vec!["o-9".to_owned()]),
        ],
        "{status}"
    );
    assert!(
        status.units[2].detail().contains("runs before `o-9`"),
        "{status}"
    );
}

#[tokio::test]
async fn orders_of_one_width_are_not_flagged() {
    let runner = || {
        Runner::new(MemoryStore::new()).units([
            unit::<Order01>(),
            unit::<Order05>(),
            unit::<Order10>(),
        ])
    };
    assert!(runner().validate().findings.is_empty());
    assert_eq!(runner().status().await.unwrap().misordered().count(), 0);
}

// ---------------------------------------------------------------- run_always

/// Rewrites the recorded checksum of every history entry of `change_id`.
fn record_checksum(store: &MemoryStore, change_id: &str, checksum: &str) {
    let history = store
        .history()
        .into_iter()
        .map(|mut entry| {
            if entry.change_id == change_id {
                entry.checksum = Some(checksum.to_owned());
            }
            entry
        })
        .collect();
    store.set_history(history);
}

#[tokio::test]
async fn a_run_always_unit_edited_since_it_ran_reports_no_drift() {
    let store = MemoryStore::new();
    let runner = || {
        Runner::new(store.clone())
            .dependency(Broken::default())
            .units([unit::<Always>()])
    };
    runner().run().await.unwrap();
    record_checksum(&store, "always", "0123456789abcdef");

    let plan = runner().plan().await.unwrap();
    assert_eq!(plan.drifted().count(), 0, "{plan}");
    let status = runner().status().await.unwrap();
    assert_eq!(status.drifted().count(), 0, "{status}");
    let report = runner()
        .checksum_policy(ChecksumPolicy::Strict)
        .run()
        .await
        .unwrap();
    assert_eq!(report.executed(), ["always"]);
}

/// A runner of [`Always`] on `store`, failing when `fail` is set.
fn always(store: &MemoryStore, fail: bool) -> Runner<MemoryStore> {
    Runner::new(store.clone())
        .dependency(Broken(AtomicBool::new(fail)))
        .units([unit::<Always>()])
}

#[tokio::test]
async fn status_shows_a_failed_rerun_of_a_run_always_unit() {
    let store = MemoryStore::new();
    let runner = |fail: bool| always(&store, fail);
    runner(false).run().await.unwrap();
    runner(true).run().await.unwrap_err();

    let status = runner(false).status().await.unwrap();
    let always = status.unit("always").unwrap();
    assert!(matches!(always.state, UnitState::Failed { .. }), "{status}");
    assert_eq!(always.state.label(), "failed");
    assert!(always.runs_again, "the next run runs it again: {status}");
}

#[tokio::test]
async fn a_run_always_unit_that_recovers_from_a_failed_rerun_is_recorded_once_more() {
    for store in [MemoryStore::new(), MemoryStore::without_transactions()] {
        let runner = |fail: bool| always(&store, fail);
        runner(false).run().await.unwrap();
        runner(true).run().await.unwrap_err();
        runner(false).run().await.unwrap();
        runner(false).run().await.unwrap();

        let states: Vec<State> = store
            .history()
            .iter()
            .filter(|e| e.change_id == "always" && e.entry_type == EntryType::Execution)
            .map(|e| e.state)
            .collect();
        assert_eq!(
            states[0],
            State::Executed,
            "the first run is recorded: {states:?}"
        );
        assert_eq!(
            states.last(),
            Some(&State::Executed),
            "the rerun after the failure is recorded, the one after that is not: {states:?}"
        );
        assert_eq!(
            states.iter().filter(|s| **s == State::Executed).count(),
            2,
            "{states:?}"
        );
        let status = runner(false).status().await.unwrap();
        let always = status.unit("always").unwrap();
        assert_eq!(always.state.label(), "executed", "{status}");
    }
}

// ---------------------------------------------------------------- messages

#[test]
fn a_held_lock_names_its_expiry_in_utc() {
    let error = Error::Locked {
        owner: "host-a".into(),
        expires_at: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_556_498_038)),
    };
    assert_eq!(
        error.to_string(),
        "the migration lock is held by `host-a` until 2026-11-24T21:41:38.038 UTC and could \
         not be acquired in time"
    );
}

#[tokio::test]
async fn releasing_a_lock_by_hand_logs_the_reason_in_words() {
    let store = MemoryStore::new();
    store.set_lock(Some(LockInfo {
        key: "DEFAULT_KEY".into(),
        owner: "gone".into(),
        expires_at: SystemTime::UNIX_EPOCH,
    }));
    let warnings = Warnings::default();
    let _guard = tracing::subscriber::set_default(warnings.clone());
    Runner::new(store.clone()).unlock(false).await.unwrap();
    let logged = warnings.0.lock().unwrap().clone();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].contains("reason=its lease had ended"),
        "{logged:?}"
    );
}

/// Records every WARN event as `field=value` pairs.
#[derive(Default, Clone)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Fields(Vec<String>);

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push(format!("{}={value}", field.name()));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0.join(" "));
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
