// TODO: Notify and watch: start signal, ready flag
fn main() {}
