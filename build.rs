// The question bank (bank/*.json) is embedded in the binary: rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=bank");
}
