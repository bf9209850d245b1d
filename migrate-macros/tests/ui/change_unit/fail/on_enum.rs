use migrate_macros::change_unit;

#[change_unit(id = "unit", order = "001")]
enum Unit {
    First,
}

fn main() {}
