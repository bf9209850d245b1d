use migrate_macros::change_log;

#[change_log(order = "001")]
enum DatabaseChangelog {
    Only,
}

fn main() {}
