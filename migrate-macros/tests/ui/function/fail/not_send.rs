use std::rc::Rc;

use migrate_macros::change_unit;

async fn later() {}

#[change_unit(id = "unit", order = "001", no_rollback)]
async fn add_index() -> anyhow::Result<()> {
    let local = Rc::new(0);
    later().await;
    drop(local);
    Ok(())
}

fn main() {}
