//! For the bare-metal target only: assemble the library's helpers
//! (`boot/mmu.S`: LDTLB, SR.IMASK, UTLB array access from P2, cache-block
//! ops, page zeroing; see "Assembly ABI" in docs/ARCHITECTURE.md) into
//! `libsh4mm_asm.a` and name it, and the m4-nofpu libgcc, with
//! `cargo:rustc-link-lib`: unlike `rustc-link-arg`, Cargo hands those to
//! every crate that links `sh4-mm`, so a dependent needs nothing else from
//! here. Entry, vectors, exception frame, linker script and heap are the
//! OS's (the board runtime `sh4-rt` in runtime/ is one).
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
    println!("cargo:rerun-if-changed=boot/mmu.S");
    let boot = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("boot");
    println!("cargo:include={}", boot.display());
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    if let Err(why) = check_atomic_flags(&env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default()) {
        eprintln!("error: sh4-mm: {why}");
        std::process::exit(1);
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cc = env::var("SH4_CC").unwrap_or_else(|_| "sh4-linux-gnu-gcc".into());
    let obj = out.join("mmu.S.o");
    run(Command::new(&cc)
        .args(["-m4-nofpu", "-ml", "-O2", "-ffreestanding", "-fno-pic", "-c", "boot/mmu.S", "-o"])
        .arg(&obj));
    // Our libgccjit build has no libgcc, and compiler_builtins has no SH
    // assembly helpers: GCC calls libgcc's hand-written ones (integer division
    // __udivsi3_i4i/__sdivsi3_i4i and their table, shifts, movmem, mulsi3).
    // Those members of Debian's cross libgcc (GCC runtime library exception)
    // go into our archive; not the whole libgcc: a dependency's native
    // libraries come before compiler_builtins on the link line, so libgcc's
    // generic members (__udivdi3, ...) would clash with compiler_builtins'.
    let libgcc = Command::new("sh4-linux-gnu-gcc").arg("-print-libgcc-file-name").output().expect("libgcc");
    let libgcc = PathBuf::from(String::from_utf8(libgcc.stdout).unwrap().trim());
    let gcc_dir = out.join("libgcc");
    let _ = std::fs::remove_dir_all(&gcc_dir);
    std::fs::create_dir_all(&gcc_dir).unwrap();
    run(Command::new("sh4-linux-gnu-ar").arg("x").arg(&libgcc).args(LIBGCC_SH_HELPERS).current_dir(&gcc_dir));
    let lib = out.join("libsh4mm_asm.a");
    let _ = std::fs::remove_file(&lib);
    run(Command::new("sh4-linux-gnu-ar")
        .arg("crs")
        .arg(&lib)
        .arg(&obj)
        .args(LIBGCC_SH_HELPERS.iter().map(|m| gcc_dir.join(m))));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=sh4mm_asm");
}

/// libgcc's SH assembly helpers (gcc/config/sh/lib1funcs.S and friends).
const LIBGCC_SH_HELPERS: &[&str] = &[
    "_ashiftrt.o",
    "_ashiftrt_n.o",
    "_ashiftlt.o",
    "_lshiftrt.o",
    "_movmem.o",
    "_movmem_i4.o",
    "_mulsi3.o",
    "_sdivsi3.o",
    "_sdivsi3_i4.o",
    "_udivsi3.o",
    "_udivsi3_i4.o",
    "_div_table.o",
    "_udiv_qrnnd_16.o",
    "_ic_invalidate.o",
    "_ic_invalidate_array.o",
];
