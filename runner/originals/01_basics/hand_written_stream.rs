// TODO: a Stream by hand
fn main() {}
