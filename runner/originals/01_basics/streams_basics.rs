// TODO: streams: unfold, iter, StreamExt, buffer_unordered
fn main() {}
