//! What `#[change_unit]` and the method markers generate: registration, descriptor fields,
//! constructor and parameter injection, and step dispatch. Uses no runner.
//!
//! `cargo xtask test` also runs this file in release mode, to check that registration survives
//! optimisation. It lives here rather than beside the macros because every test build of the
//! macros crate also compiles trybuild for the UI tests; here the release build compiles only
//! what this file needs.

// Generated code names `::migrate::__private`; this crate provides all of it.
extern crate migrate_core as migrate;

use std::sync::Mutex;

use migrate::__private::{Dependencies, DescribeUnit, Step, StepContext};
use migrate::memory::{MemorySession, MemoryStore};
use migrate::{BoxError, ChangeUnit, Dep, Store};
use migrate_macros::{
    before_execution, change_unit, execution, rollback_before_execution, rollback_execution,
};

/// Records which methods ran, in order.
#[derive(Default)]
struct Calls(Mutex<Vec<String>>);

impl Calls {
    fn push(&self, call: impl Into<String>) {
        self.0.lock().unwrap().push(call.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Never registered, so optional sites resolve to `None`.
struct NotRegistered;

/// A unit with every key and every step.
#[change_unit(
    id = "full-unit",
    order = "001",
    author = "platform",
    system_version = "2.5.1",
    run_always = true,
    transactional = false,
    fail_fast = false,
    profiles = ["dev", "!prod"]
)]
pub struct FullUnit {
    calls: Dep<Calls>,
    absent: Option<Dep<NotRegistered>>,
}

impl FullUnit {
    #[before_execution]
    async fn create_collection(&self) -> Result<(), BoxError> {
        self.calls.push("before");
        Ok(())
    }

    #[rollback_before_execution]
    async fn drop_collection(&self) -> anyhow::Result<()> {
        self.calls.push("rollback_before");
        Ok(())
    }

    #[execution]
    async fn execute(
        &self,
        session: &mut MemorySession,
        calls: &Calls,
        absent: Option<&NotRegistered>,
        _: Option<Dep<NotRegistered>>,
    ) -> anyhow::Result<()> {
        session.insert("full-unit", "done");
        calls.push(format!(
            "execute absent_field={} absent_param={}",
            self.absent.is_some(),
            absent.is_some()
        ));
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result<(), std::io::Error> {
        self.calls.push("rollback");
        Err(std::io::Error::other("rollback failed on purpose"))
    }
}

/// The smallest unit: no fields, no keys beyond the required ones.
#[change_unit(id = "minimal", order = "002")]
struct Minimal;

impl Minimal {
    #[execution]
    async fn apply(&self) -> anyhow::Result<()> {
        Ok(())
    }

    #[rollback_execution]
    async fn undo(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A tuple struct whose steps live in two impl blocks.
#[change_unit(id = "tuple", order = "003")]
struct Tuple(Dep<Calls>);

impl Tuple {
    #[execution]
    async fn r#move(&self, calls: Dep<Calls>) -> anyhow::Result<()> {
        assert!(std::ptr::eq(&*self.0, &*calls));
        calls.push("tuple");
        Ok(())
    }
}

impl Tuple {
    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Units stamped out by a macro: its fragments reach the attribute in invisible groups.
macro_rules! versioned {
    ($name:ident, $id:literal, $version:expr, $dep:ty) => {
        #[change_unit(id = $id, order = $id, system_version = $version)]
        struct $name;

        impl $name {
            #[execution]
            async fn execute(&self, calls: $dep) -> anyhow::Result<()> {
                calls.push($id);
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self) -> anyhow::Result<()> {
                Ok(())
            }
        }
    };
}

versioned!(Versioned1, "versioned-1", "1", &Calls);
versioned!(Versioned2, "versioned-2", "2.0", Dep<Calls>);

/// The struct in one module, its steps in another.
mod declared {
    use super::*;

    #[change_unit(id = "split-modules", order = "004")]
    pub(crate) struct SplitModules;
}

mod steps {
    use super::*;

    impl declared::SplitModules {
        #[execution]
        async fn execute(&self, calls: &Calls) -> anyhow::Result<()> {
            calls.push("split-modules");
            Ok(())
        }

        #[rollback_execution]
        async fn rollback(&self) -> anyhow::Result<()> {
            Ok(())
        }
    }
}

/// A unit whose texts are too long to sit in its descriptor: they are one packed string.
#[change_unit(
    id = "a-unit-whose-texts-do-not-fit-in-its-descriptor",
    order = "005",
    author = "the-platform-team",
    system_version = "3.10.2"
)]
struct LongTexts;

/// A unit whose texts sit in its descriptor, with characters of more than one byte.
#[change_unit(id = "einführung", order = "006-ü", author = "zoë")]
struct ShortTexts;

macro_rules! does_nothing {
    ($($unit:ident),*) => {$(
        impl $unit {
            #[execution]
            async fn execute(&self) -> anyhow::Result<()> {
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self) -> anyhow::Result<()> {
                Ok(())
            }
        }
    )*};
}

does_nothing!(LongTexts, ShortTexts);

fn unit(id: &str) -> &'static ChangeUnit {
    migrate::registered()
        .iter()
        .find(|unit| unit.id() == id)
        .unwrap_or_else(|| panic!("unit `{id}` is not registered"))
}

fn deps() -> (Dependencies, Dep<Calls>) {
    let mut deps = Dependencies::new();
    deps.insert(Calls::default());
    let calls = deps.get_dep::<Calls>().unwrap();
    (deps, calls)
}

async fn run(
    unit: &'static ChangeUnit,
    deps: &Dependencies,
    step: Step,
    session: Option<&mut MemorySession>,
) -> Option<Result<(), BoxError>> {
    let instance = migrate::__private::instantiate(unit, deps).unwrap();
    let session = session.map(|s| s as &mut (dyn std::any::Any + Send));
    let cx = StepContext::new(unit.id(), deps, session);
    let future = instance.run_step(step, cx)?;
    Some(future.await)
}

#[test]
fn every_annotated_struct_is_registered_once() {
    for id in ["full-unit", "minimal", "tuple"] {
        let count = migrate::registered()
            .iter()
            .filter(|unit| unit.id() == id)
            .count();
        assert_eq!(count, 1, "{id}");
    }
    assert!(std::ptr::eq(FullUnit::change_unit(), unit("full-unit")));
}

#[test]
fn descriptor_carries_every_key() {
    let unit = unit("full-unit");
    assert_eq!(unit.order(), "001");
    assert_eq!(unit.declared_author(), Some("platform"));
    assert_eq!(unit.system_version(), "2.5.1");
    assert!(unit.run_always());
    assert!(!unit.transactional());
    assert!(!unit.fail_fast());
    assert_eq!(unit.profiles(), ["dev", "!prod"]);
    assert_eq!(unit.type_path(), "registration::FullUnit");
    assert_eq!(unit.execution_method(), "execute");
    assert_eq!(unit.before_method(), Some("create_collection"));
    assert_eq!(unit.checksum().len(), 16);
    assert!(unit
        .location()
        .starts_with("migrate-core/tests/registration.rs:"));
}

#[test]
fn texts_read_back_whether_they_sit_in_the_descriptor_or_not() {
    let long = unit("a-unit-whose-texts-do-not-fit-in-its-descriptor");
    assert_eq!(long.order(), "005");
    assert_eq!(long.declared_author(), Some("the-platform-team"));
    assert_eq!(long.system_version(), "3.10.2");
    let short = unit("einführung");
    assert_eq!(short.order(), "006-ü");
    assert_eq!(short.declared_author(), Some("zoë"));
    assert_eq!(short.system_version(), "0");
    assert!(std::ptr::eq(ShortTexts::change_unit(), short));
    assert!(std::ptr::eq(LongTexts::change_unit(), long));
}

#[test]
fn defaults_apply_to_keys_left_out() {
    let unit = unit("minimal");
    assert_eq!(unit.declared_author(), None);
    assert_eq!(unit.system_version(), "0");
    assert!(!unit.run_always());
    assert!(unit.transactional());
    assert!(unit.fail_fast());
    assert!(unit.profiles().is_empty());
    assert_eq!(unit.execution_method(), "apply");
    assert_eq!(unit.before_method(), None);
    assert_eq!(self::unit("tuple").execution_method(), "move");
}

#[tokio::test]
async fn units_declared_by_a_macro_keep_their_values() {
    let (deps, calls) = deps();
    assert_eq!(unit("versioned-1").system_version(), "1");
    assert_eq!(unit("versioned-2").system_version(), "2.0");
    assert_eq!(unit("versioned-2").order(), "versioned-2");
    for id in ["versioned-1", "versioned-2"] {
        run(unit(id), &deps, Step::Execution, None)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(calls.take(), ["versioned-1", "versioned-2"]);
}

#[tokio::test]
async fn steps_may_live_in_another_module_than_the_struct() {
    let (deps, calls) = deps();
    let unit = unit("split-modules");
    assert_eq!(unit.execution_method(), "execute");
    run(unit, &deps, Step::Execution, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(calls.take(), ["split-modules"]);
}

#[test]
fn checksums_differ_between_units() {
    assert_ne!(unit("full-unit").checksum(), unit("minimal").checksum());
    assert_ne!(unit("minimal").checksum(), unit("tuple").checksum());
}

#[test]
fn requirements_list_fields_then_step_parameters() {
    let sites: Vec<(&str, bool, bool, &str)> = unit("full-unit")
        .requirements()
        .into_iter()
        .map(|(req, site)| (req.type_name, req.optional, req.session, site))
        .collect();
    let calls = std::any::type_name::<Calls>();
    let absent = std::any::type_name::<NotRegistered>();
    let session = std::any::type_name::<MemorySession>();
    assert_eq!(
        sites,
        [
            (calls, false, false, "field `calls`"),
            (absent, true, false, "field `absent`"),
            (session, false, true, "parameter `session` of `execute`"),
            (calls, false, false, "parameter `calls` of `execute`"),
            (absent, true, false, "parameter `absent` of `execute`"),
            (absent, true, false, "parameter 4 of `execute`"),
        ]
    );
    let tuple: Vec<&str> = unit("tuple")
        .requirements()
        .into_iter()
        .map(|(_, site)| site)
        .collect();
    assert_eq!(tuple, ["field 0", "parameter `calls` of `move`"]);
    assert!(unit("minimal").requirements().is_empty());
}

#[tokio::test]
async fn steps_dispatch_to_the_marked_methods() {
    let (deps, calls) = deps();
    let store = MemoryStore::new();
    let mut session = store.start_session().await.unwrap();
    let unit = unit("full-unit");

    run(unit, &deps, Step::BeforeExecution, None)
        .await
        .unwrap()
        .unwrap();
    run(unit, &deps, Step::Execution, Some(&mut session))
        .await
        .unwrap()
        .unwrap();
    run(unit, &deps, Step::RollbackBeforeExecution, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        calls.take(),
        [
            "before",
            "execute absent_field=false absent_param=false",
            "rollback_before"
        ]
    );
    assert_eq!(session.get("full-unit").as_deref(), Some("done"));
}

#[tokio::test]
async fn method_errors_are_returned_boxed() {
    let (deps, _calls) = deps();
    let error = run(unit("full-unit"), &deps, Step::RollbackExecution, None)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.to_string(), "rollback failed on purpose");
}

#[tokio::test]
async fn steps_without_a_method_return_none() {
    let (deps, _calls) = deps();
    let minimal = unit("minimal");
    assert!(run(minimal, &deps, Step::BeforeExecution, None)
        .await
        .is_none());
    assert!(run(minimal, &deps, Step::RollbackBeforeExecution, None)
        .await
        .is_none());
    run(minimal, &deps, Step::Execution, None)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn steps_in_a_second_impl_block_are_found() {
    let (deps, calls) = deps();
    let tuple = unit("tuple");
    run(tuple, &deps, Step::Execution, None)
        .await
        .unwrap()
        .unwrap();
    run(tuple, &deps, Step::RollbackExecution, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(calls.take(), ["tuple"]);
}

#[test]
fn a_missing_field_dependency_names_the_unit_and_the_type() {
    let error = match migrate::__private::instantiate(unit("full-unit"), &Dependencies::new()) {
        Ok(_) => panic!("instantiated without its dependency"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("`full-unit`"), "{error}");
    assert!(error.contains("Calls"), "{error}");
    assert!(error.contains("field `calls`"), "{error}");
}

#[tokio::test]
async fn a_missing_session_is_an_error_not_a_panic() {
    let (deps, _calls) = deps();
    let error = run(unit("full-unit"), &deps, Step::Execution, None)
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.to_string().contains("`full-unit`"), "{error}");
}

#[tokio::test]
async fn a_missing_parameter_dependency_names_the_unit_and_the_parameter() {
    let (deps, _calls) = deps();
    let unit = unit("tuple");
    let instance = migrate::__private::instantiate(unit, &deps).unwrap();
    let empty = Dependencies::new();
    let cx = StepContext::new(unit.id(), &empty, None);
    let error = instance
        .run_step(Step::Execution, cx)
        .unwrap()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("`tuple`"), "{error}");
    assert!(error.contains("parameter `calls` of `move`"), "{error}");
}
