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

/// The SH-4 has no compare-and-swap. Without `-matomic-model=soft-imask,strict`
/// GCC emits gUSA sequences for atomics: they set r15 to a small negative
/// number (minus the sequence length) for their duration, so an exception or
/// interrupt taken inside one pushes its frame at 0xFFFFFFF8 and the kernel
/// dies. soft-imask masks interrupts around each read-modify-write instead,
/// which needs privileged code (`-mno-usermode`). Every crate of an SH-4 build
/// gets RUSTFLAGS, so checking ours covers the crates that depend on us.
fn check_atomic_flags(encoded: &str) -> Result<(), String> {
    // "-Cllvm-args=X" or "-C" "llvm-args=X"; rustc_codegen_gcc hands X to GCC.
    let flags: Vec<&str> = encoded.split('\x1f').collect();
    let mut gcc_args = Vec::new();
    for (i, f) in flags.iter().enumerate() {
        let arg = match f.strip_prefix("-C") {
            Some("") => flags.get(i + 1).and_then(|n| n.strip_prefix("llvm-args=")),
            Some(rest) => rest.strip_prefix("llvm-args="),
            None => None,
        };
        gcc_args.extend(arg.into_iter().flat_map(|a| a.split(' ')));
    }
    let model = gcc_args.iter().rev().find_map(|a| a.strip_prefix("-matomic-model="));
    let usermode = gcc_args.iter().rev().find(|a| a.ends_with("usermode"));
    if model == Some("soft-imask,strict") && usermode == Some(&"-mno-usermode") {
        return Ok(());
    }
    Err(format!(
        "refusing to build for the SH-4 without `-Cllvm-args=-matomic-model=soft-imask,strict -Cllvm-args=-mno-usermode` \
         in RUSTFLAGS (found atomic model {model:?}, {usermode:?}): without them GCC emits gUSA atomic \
         sequences, and an exception inside one pushes its frame at 0xFFFFFFF8. Build with scripts/sh4-cargo, \
         or add both flags."
    ))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=boot");
    println!("cargo:rerun-if-changed=linker.ld");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    if let Err(why) = check_atomic_flags(&env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default()) {
        eprintln!("error: sh4-mm: {why}");
        std::process::exit(1);
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
