//! sh4-rt's r2d linker script: the one link argument a crate on sh4-rt must
//! give itself (Cargo does not forward link arguments between crates).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let ld = std::env::var("DEP_SH4RT_LINKER_SCRIPT").expect("sh4-rt's linker script");
    println!("cargo:rustc-link-arg=-T{ld}");
    println!("cargo:rustc-link-arg=--gc-sections");
    println!("cargo:rustc-link-arg=--no-warn-rwx-segments");
}
