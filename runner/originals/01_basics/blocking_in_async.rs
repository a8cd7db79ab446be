// TODO: blocking inside async stalls everything
fn main() {}
