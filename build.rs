//! For the bare-metal target only: assemble `boot/*.S`, compile
//! `boot/abi_probe.c`, and link them with the kernel (plus the m4-nofpu
//! libgcc for the SH division/shift helpers GCC calls).
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed: {st}");
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=boot");
    println!("cargo:rerun-if-changed=linker.ld");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cc = env::var("SH4_CC").unwrap_or_else(|_| "sh4-linux-gnu-gcc".into());
    let mut objs = vec![];
    for src in ["start.S", "mmu.S", "abi_probe.c"] {
        let obj = out.join(format!("{src}.o"));
        run(Command::new(&cc)
            .args(["-m4-nofpu", "-ml", "-O2", "-ffreestanding", "-fno-pic", "-c"])
            .arg(format!("boot/{src}"))
            .arg("-o")
            .arg(&obj));
        objs.push(obj);
    }
    let lib = out.join("libsh4boot.a");
    let _ = std::fs::remove_file(&lib);
    run(Command::new("sh4-linux-gnu-ar").arg("crs").arg(&lib).args(&objs));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-arg=--whole-archive");
    println!("cargo:rustc-link-arg=-lsh4boot");
    println!("cargo:rustc-link-arg=--no-whole-archive");
    // Our libgccjit build has no libgcc; Debian's cross libgcc provides the
    // SH helpers (integer division __udivsi3_i4i/__sdivsi3_i4i, shifts, movmem).
    let libgcc = Command::new("sh4-linux-gnu-gcc").arg("-print-libgcc-file-name").output().expect("libgcc");
    let libgcc = String::from_utf8(libgcc.stdout).unwrap().trim().to_string();
    println!("cargo:rustc-link-arg={libgcc}");
    let ld = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("linker.ld");
    println!("cargo:rustc-link-arg=-T{}", ld.display());
    println!("cargo:rustc-link-arg=--gc-sections");
    // One flat RWX image is what the boot loader expects; no W^X here yet.
    println!("cargo:rustc-link-arg=--no-warn-rwx-segments");
}
