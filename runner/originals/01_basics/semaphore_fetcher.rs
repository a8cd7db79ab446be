// TODO: Semaphore: a concurrency limit
fn main() {}
