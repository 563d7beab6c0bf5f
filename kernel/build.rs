//! Links the kernel with its linker script.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if std::env::var("TARGET").is_ok_and(|t| t == "aarch64-unknown-none") {
        println!("cargo:rustc-link-arg=-T{dir}/linker.ld");
    }
    println!("cargo:rerun-if-changed=linker.ld");
}
