// TODO: a guard that always releases, plus async close
fn main() {}
