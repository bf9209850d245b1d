use migrate_macros::change_unit;

#[change_unit(id = "unit", order = "001")]
async fn add_index() -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
