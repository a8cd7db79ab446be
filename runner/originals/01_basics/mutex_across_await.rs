// TODO: std vs tokio Mutex; a guard held across .await; RwLock
fn main() {}
