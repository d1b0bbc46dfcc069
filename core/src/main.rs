//! The `flint` command line. Wiring only.

fn main() {
    println!("flint");
}
