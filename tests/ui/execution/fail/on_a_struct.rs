use migrate::execution;

#[execution]
struct Plain;

fn main() {}
