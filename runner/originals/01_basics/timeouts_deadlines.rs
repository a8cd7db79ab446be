// TODO: timeout, timeout_at, one deadline over many steps
fn main() {}
