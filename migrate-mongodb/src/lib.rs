//! MongoDB store for `migrate`.
