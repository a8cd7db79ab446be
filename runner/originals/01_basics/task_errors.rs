// TODO: panics become JoinError; collect every result
fn main() {}
