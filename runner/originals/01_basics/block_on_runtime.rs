// TODO: running async code from sync code: Runtime, block_on, flavours
fn main() {}
