//! Links the demo kernel: its test helpers (`asm/testhelpers.S`, the ABI
//! probe `asm/abi_probe.c`) and sh4-rt's r2d linker script. sh4-mm's
//! helpers and libgcc, and sh4-rt's entry and vectors, arrive by
//! themselves through their `rustc-link-lib`.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed: {st}");
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=asm");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cc = env::var("SH4_CC").unwrap_or_else(|_| "sh4-linux-gnu-gcc".into());
    let mut objs = vec![];
    for src in ["testhelpers.S", "abi_probe.c"] {
        let obj = out.join(format!("{src}.o"));
        run(Command::new(&cc)
            .args(["-m4-nofpu", "-ml", "-O2", "-ffreestanding", "-fno-pic", "-c"])
            .arg(format!("asm/{src}"))
            .arg("-o")
            .arg(&obj));
        objs.push(obj);
    }
    let lib = out.join("libsh4mm_kernel.a");
    let _ = std::fs::remove_file(&lib);
    run(Command::new("sh4-linux-gnu-ar").arg("crs").arg(&lib).args(&objs));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=sh4mm_kernel");
    let ld = env::var("DEP_SH4RT_LINKER_SCRIPT").expect("sh4-rt's linker script");
    println!("cargo:rustc-link-arg=-T{ld}");
    println!("cargo:rustc-link-arg=--gc-sections");
    // One flat RWX image is what the boot loader expects; no W^X here yet.
    println!("cargo:rustc-link-arg=--no-warn-rwx-segments");
}
