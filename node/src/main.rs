//! The `ufer` binary. The node is the next piece of work (the node issue); until it lands
//! this binary only says so.

fn main() {
    eprintln!(
        "ufer {}: the node is not built yet; the log and batch format are (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
