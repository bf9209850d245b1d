use migrate::memory::MemorySession;
use migrate::Dep;
use migrate_macros::{change_unit, execution, rollback_execution};

struct Counter;

/// Units stamped out by a user's macro: fragments arrive wrapped in invisible groups.
macro_rules! unit {
    ($name:ident, $id:literal, $order:expr, $version:literal, $field:ty, $session:ty) => {
        #[change_unit(id = $id, order = $order, system_version = $version)]
        struct $name {
            counter: $field,
        }

        impl $name {
            #[execution]
            async fn execute(&self, session: $session) -> anyhow::Result<()> {
                let _ = (session, &self.counter);
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self) -> anyhow::Result<()> {
                Ok(())
            }
        }
    };
}

unit!(First, "first", "001", "1", Dep<Counter>, &mut MemorySession);
unit!(Second, "second", "002", "2.0", Option<Dep<Counter>>, &mut MemorySession);

fn main() {}
