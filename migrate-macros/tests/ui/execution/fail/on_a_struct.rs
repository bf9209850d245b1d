use migrate_macros::execution;

#[execution]
struct Plain;

fn main() {}
