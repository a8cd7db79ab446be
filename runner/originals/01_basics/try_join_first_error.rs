// TODO: try_join!: the first error wins
fn main() {}
