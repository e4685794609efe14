//! Generates include/sh4mm.h (in OUT_DIR; scripts/capi.sh checks it against
//! the committed capi/include/sh4mm.h) with cbindgen.
fn main() {
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sh4mm.h");
    // cbindgen asks `cargo metadata`, which must not inherit the sh4
    // target's RUSTFLAGS (they name the GCC codegen backend).
    for v in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC_WRAPPER"] {
        std::env::remove_var(v);
    }
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate sh4mm.h")
        .write_to_file(&out);
}
