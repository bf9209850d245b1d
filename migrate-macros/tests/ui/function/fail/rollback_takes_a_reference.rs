use migrate_macros::change_unit;

struct Api;

#[change_unit(id = "unit", order = "001", rollback = undo)]
async fn add_index() -> anyhow::Result<()> {
    Ok(())
}

async fn undo(_api: &Api) -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
