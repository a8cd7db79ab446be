// TODO: broadcast: fan-out, lagging receivers
fn main() {}
