use migrate_macros::change_unit;

#[change_unit(id = "unit", order = "001", no_rollback)]
async fn add_index<T: Send>(_value: Option<T>) -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
