// TODO: select!: first wins, losers dropped; biased
fn main() {}
