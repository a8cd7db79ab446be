// TODO: bounded mpsc: backpressure
fn main() {}
