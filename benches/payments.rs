//! Payment notifications applied per second (being written).
fn main() {}
