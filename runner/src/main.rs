mod suggest;

fn main() {}
