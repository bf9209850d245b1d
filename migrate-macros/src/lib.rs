//! Attribute macros of the `migrate` framework. Use them through the `migrate` crate, which
//! re-exports them next to the runtime items the generated code needs.
//!
//! `#[change_unit(...)]` goes on the struct of a change unit, or on an `async fn` that is a
//! whole unit; `#[execution]`, `#[rollback_execution]`, `#[before_execution]` and
//! `#[rollback_before_execution]` go on `async fn(&self, ...)` methods in a plain `impl` block
//! of that struct. The struct macro registers the unit; each method marker adds hidden items
//! to the impl that the struct macro finds by name.
//!
//! The legacy model of mongobee and Mongock 3: `#[change_log]` goes on a struct and on its
//! impl block, whose `async fn(&self, ...)` methods marked `#[change_set(...)]` it registers,
//! each as a unit of its own.

use proc_macro::TokenStream;

use rules::steps::Step;

mod attr;
mod change_log;
mod checksum;
mod errors;
mod expand;
mod fields;
mod function;
mod respan;
mod rules;
mod step;
mod unit;
mod values;

/// Declares a change unit: registers the struct with the runner and builds it by resolving
/// every field from the runner's dependencies.
///
/// ```ignore
/// #[change_unit(id = "client-initializer", order = "001", author = "platform")]
/// pub struct ClientInitializer {
///     db: Database,
///     api: Dep<ThirdPartyApi>,
/// }
/// ```
///
/// Keys: `id` and `order` (required strings), `author` (string; the runner's default author
/// when absent), `system_version` (string, `"0"` when absent), `run_always` (bool, `false`),
/// `transactional` (bool, `true`), `fail_fast` (bool, `true`), `profiles` (array of strings
/// such as `["dev", "!prod"]`; always active when absent) and `crate` (path to the `migrate`
/// crate, `::migrate` when absent; a crate that renames `migrate` gives the same path to each
/// step marker, `#[execution(crate = mg)]`).
///
/// The struct must not be generic. Its impl must mark one `#[execution]` and one
/// `#[rollback_execution]` method, and may mark a `#[before_execution]` method together with a
/// `#[rollback_before_execution]` one.
///
/// On an `async fn`, the function is the unit's execution, its parameters injected like an
/// `#[execution]` method's, and the attribute takes one more key: `rollback = path`, an
/// `async fn` whose parameters (up to four) are owned injectable values such as `Database`,
/// `Client` or `Dep<T>`, or the flag `no_rollback` for a change whose failed run leaves
/// nothing to undo. The unit is recorded with the function's path as its type and the
/// function's name as its method. A unit that needs a `#[before_execution]` step, or a
/// rollback taking references or the session, is written as a struct.
///
/// ```ignore
/// #[change_unit(id = "add-clients-index", order = "002", rollback = drop_clients_index)]
/// async fn add_clients_index(db: Database) -> anyhow::Result<()> { .. }
///
/// async fn drop_clients_index(db: Database) -> anyhow::Result<()> { .. }
/// ```
#[proc_macro_attribute]
pub fn change_unit(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::change_unit(args.into(), item.into()).into()
}

/// Marks the method that applies a change unit's change. Exactly one per unit.
///
/// The method is an `async fn(&self, ...) -> Result<(), E>` with `E: Into<BoxError>`; every
/// other parameter is injected by type, and one `&mut` parameter may take the store's session
/// (e.g. `&mut ClientSession`), which carries the transaction when the unit runs in one.
/// Accepts `crate = path` like `#[change_unit]`.
#[proc_macro_attribute]
pub fn execution(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::step(Step::Execution, args.into(), item.into()).into()
}

/// Marks the method that undoes `#[execution]` when it fails or on an explicit rollback.
/// Exactly one per unit; its body may be empty. Same signature rules as `#[execution]`.
#[proc_macro_attribute]
pub fn rollback_execution(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::step(Step::RollbackExecution, args.into(), item.into()).into()
}

/// Marks an optional method that runs before `#[execution]`, outside any transaction (for
/// DDL such as creating collections or indexes). Requires a `#[rollback_before_execution]`
/// method. Same signature rules as `#[execution]`.
#[proc_macro_attribute]
pub fn before_execution(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::step(Step::BeforeExecution, args.into(), item.into()).into()
}

/// Marks the method that undoes `#[before_execution]`. Required when the unit has a
/// `#[before_execution]` method, and only then. Same signature rules as `#[execution]`.
#[proc_macro_attribute]
pub fn rollback_before_execution(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::step(Step::RollbackBeforeExecution, args.into(), item.into()).into()
}

/// Declares a change log, the legacy model of Mongock 3 and mongobee: on a struct, the change
/// log itself, built by resolving every field from the runner's dependencies like a change
/// unit; on the struct's impl block, the block whose `#[change_set]` methods it registers.
///
/// ```ignore
/// #[change_log(order = "001")]
/// pub struct DatabaseChangelog {
///     db: Database,
/// }
///
/// #[change_log]
/// impl DatabaseChangelog {
///     #[change_set(id = "someChangeId", author = "testAuthor", order = "001")]
///     async fn important_work(&self, session: &mut ClientSession) -> anyhow::Result<()> {
///         Ok(())
///     }
/// }
/// ```
///
/// Keys on the struct: `order` (string; where the change log runs among change units, compared
/// as a plain string; the type's name when absent), `profiles` (array of profile expressions
/// that every change set must match too) and `crate` (path to the `migrate` crate). On the
/// impl block: `crate` only. The struct must not be generic.
#[proc_macro_attribute]
pub fn change_log(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::change_log(args.into(), item.into()).into()
}

/// Marks a method of a `#[change_log]` impl block as a change set: tracked, ordered and run
/// on its own, in its own transaction where the store runs them, with no rollback.
///
/// Keys: `id` and `author` (required strings), `order` (string, sorts the change sets of one
/// change log as plain strings; ties broken by id), `system_version` (string, `"0"` when
/// absent), `run_always` (bool, `false`) and `profiles` (array such as `["dev", "!prod"]`).
/// The method follows the rules of `#[execution]`: `async fn(&self, ...) -> Result<(), E>`
/// with every other parameter injected.
#[proc_macro_attribute]
pub fn change_set(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::change_set(args.into(), item.into()).into()
}
