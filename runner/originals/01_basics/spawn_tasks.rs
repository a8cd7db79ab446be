// TODO: tokio::spawn, JoinHandle, 'static + Send, Arc
fn main() {}
