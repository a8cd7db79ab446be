// TODO: cancellation and graceful shutdown
fn main() {}
