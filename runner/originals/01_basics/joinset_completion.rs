// TODO: JoinSet: completion order, abort on failure
fn main() {}
