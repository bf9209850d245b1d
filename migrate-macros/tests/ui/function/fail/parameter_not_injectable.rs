use migrate_macros::change_unit;

#[change_unit(id = "unit", order = "001", no_rollback)]
async fn add_index(_count: u32) -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
