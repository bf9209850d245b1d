use migrate_macros::change_unit;

#[change_unit(id = "unit", order = "001", rollback = undo, no_rollback)]
async fn add_index() -> anyhow::Result<()> {
    Ok(())
}

async fn undo() -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
