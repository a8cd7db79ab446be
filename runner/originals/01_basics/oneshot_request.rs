// TODO: oneshot: request/response to an actor
fn main() {}
