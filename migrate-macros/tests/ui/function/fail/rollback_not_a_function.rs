use migrate_macros::change_unit;

const UNDO: u8 = 0;

#[change_unit(id = "unit", order = "001", rollback = UNDO)]
async fn add_index() -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
