// TODO: a Future by hand: poll, Pin, Context, Waker
fn main() {}
