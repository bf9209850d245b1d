//! Typed dependency map and the injection traits used by generated code.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A shared handle to a value registered with
/// [`Runner::dependency`](crate::Runner::dependency).
///
/// `Dep<T>` is cheap to clone and dereferences to `T`. Use it for struct fields of a change
/// unit (constructor injection); method parameters may also take `&T` directly.
pub struct Dep<T: ?Sized>(Arc<T>);

impl<T: ?Sized> Dep<T> {
    /// Wraps an existing `Arc`.
    pub fn from_arc(value: Arc<T>) -> Self {
        Dep(value)
    }

    /// Returns the underlying `Arc`.
    pub fn into_arc(this: Self) -> Arc<T> {
        this.0
    }
}

impl<T: ?Sized> Clone for Dep<T> {
    fn clone(&self) -> Self {
        Dep(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Deref for Dep<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Dep<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

/// The typed dependency map a runner injects from: at most one value per type.
#[derive(Default)]
pub struct Dependencies {
    values: HashMap<TypeId, Entry>,
}

impl Dependencies {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `value`, replacing any earlier value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.insert_arc(Arc::new(value));
    }

    /// Registers a value that is already shared.
    pub fn insert_arc<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.values.insert(
            TypeId::of::<T>(),
            Entry {
                value,
                type_name: type_name::<T>(),
            },
        );
    }

    /// Borrows the value of type `T`, if one is registered.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|entry| entry.value.downcast_ref::<T>())
    }

    /// A shared handle to the value of type `T`, if one is registered.
    pub fn get_dep<T: Send + Sync + 'static>(&self) -> Option<Dep<T>> {
        let entry = self.values.get(&TypeId::of::<T>())?;
        Arc::clone(&entry.value).downcast::<T>().ok().map(Dep)
    }

    /// Whether a value with this type id is registered.
    pub fn contains(&self, type_id: TypeId) -> bool {
        self.values.contains_key(&type_id)
    }

    /// Names of the registered types, sorted (for diagnostics).
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.values.values().map(|e| e.type_name).collect();
        names.sort_unstable();
        names
    }
}

impl fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.type_names()).finish()
    }
}

/// What one injection site of a change unit needs from the dependency map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The registered type the site is resolved from.
    pub type_id: TypeId,
    /// Its name, for error messages.
    pub type_name: &'static str,
    /// Whether the site accepts a missing value (`Option<..>`).
    pub optional: bool,
    /// Whether the site is the store's session (`&mut ClientSession`), which every step
    /// receives and which is never looked up in the map.
    pub session: bool,
}

impl Requirement {
    /// A requirement on a value of type `T` in the map.
    pub fn of<T: ?Sized + 'static>() -> Self {
        Requirement {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
            optional: false,
            session: false,
        }
    }
}

/// A type a change unit field or method parameter can be resolved to.
///
/// Implemented for [`Dep<T>`], `&T`, `Option<X>` of any injectable `X`, and by storage crates
/// for their own handles (the MongoDB store adds `Database` and `Client`). The `M` parameter
/// only lets storage crates add implementations for types they do not own; it is always
/// inferred.
#[diagnostic::on_unimplemented(
    message = "cannot inject `{Self}` into a change unit",
    label = "not injectable",
    note = "inject `Dep<T>` or `&T` for a value registered with `Runner::dependency`, `Option<..>` of those, or a handle the store provides (`Database`, `Client`, `&mut ClientSession`)"
)]
pub trait Inject<'a, M = ()>: Sized {
    /// What this site needs from the dependency map.
    fn requirement() -> Requirement;

    /// Resolves the value, or `None` when it is not registered.
    fn resolve(deps: &'a Dependencies) -> Option<Self>;
}

impl<'a, T: Send + Sync + 'static> Inject<'a> for Dep<T> {
    fn requirement() -> Requirement {
        Requirement::of::<T>()
    }

    fn resolve(deps: &'a Dependencies) -> Option<Self> {
        deps.get_dep::<T>()
    }
}

impl<'a, T: Send + Sync + 'static> Inject<'a> for &'a T {
    fn requirement() -> Requirement {
        Requirement::of::<T>()
    }

    fn resolve(deps: &'a Dependencies) -> Option<Self> {
        deps.get::<T>()
    }
}

impl<'a, M, T: Inject<'a, M>> Inject<'a, M> for Option<T> {
    fn requirement() -> Requirement {
        Requirement {
            optional: true,
            ..T::requirement()
        }
    }

    fn resolve(deps: &'a Dependencies) -> Option<Self> {
        Some(T::resolve(deps))
    }
}

/// A store session type that change unit methods can take as `&mut Session`.
///
/// Implemented by storage crates (`ClientSession` for MongoDB, `MemorySession` for the
/// in-memory store). Every step receives the session; it carries the transaction when the unit
/// runs transactionally.
#[diagnostic::on_unimplemented(
    message = "cannot inject `&mut {Self}` into a change unit",
    label = "not a store session",
    note = "the only `&mut` parameter a change unit method may take is the store's session, e.g. `&mut ClientSession`"
)]
pub trait InjectSession<M = ()>: Send + 'static {
    /// The requirement recorded for this site.
    fn requirement() -> Requirement {
        Requirement {
            session: true,
            ..Requirement::of::<Self>()
        }
    }
}
