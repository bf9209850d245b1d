use migrate_macros::change_unit;

#[change_unit(id = "unit", order = "001", no_rollback)]
fn add_index() -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
