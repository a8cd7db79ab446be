// TODO: async fn and .await: futures are lazy
fn main() {}
