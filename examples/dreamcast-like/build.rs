//! Everything a crate on sh4-mm must add to its own link: its boot code and
//! its linker script. sh4-mm's assembly helpers and libgcc's SH helpers
//! arrive by themselves (sh4-mm's `rustc-link-lib`).
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=boot/start.S");
    println!("cargo:rerun-if-changed=link.x");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cc = env::var("SH4_CC").unwrap_or_else(|_| "sh4-linux-gnu-gcc".into());
    let obj = out.join("start.o");
    // sh4mm_asm.h: the register addresses and PTE bits sh4-mm uses.
    let inc = env::var("DEP_SH4MM_ASM_INCLUDE").expect("sh4-mm's include dir");
    let st = Command::new(&cc)
        .args(["-m4-nofpu", "-ml", "-O2", "-ffreestanding", "-fno-pic", "-c"])
        .arg(format!("-I{inc}"))
        .arg(dir.join("boot/start.S"))
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("sh4 gcc");
    assert!(st.success(), "assembling boot/start.S failed");
    let lib = out.join("libdcboot.a");
    let _ = std::fs::remove_file(&lib);
    let st = Command::new("sh4-linux-gnu-ar").arg("crs").arg(&lib).arg(&obj).status().expect("ar");
    assert!(st.success(), "ar failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    // Whole archive: nothing in Rust names _start or the vectors.
    println!("cargo:rustc-link-lib=static:+whole-archive=dcboot");
    println!("cargo:rustc-link-arg=-T{}", dir.join("link.x").display());
    println!("cargo:rustc-link-arg=--gc-sections");
    println!("cargo:rustc-link-arg=--no-warn-rwx-segments");
}
