//! Assembles the runtime's entry, vectors and exception frame
//! (`asm/start.S`) and its probes and user-mode/stack helpers (`asm/user.S`)
//! into `libsh4rt.a`, linked whole into every dependent (nothing references
//! `_start` or the vectors by name). The linker script is the dependent's
//! to pass (`-T`): Cargo does not forward link arguments, so it is handed
//! over as `DEP_SH4RT_LINKER_SCRIPT` (see kernel/build.rs).
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
    println!("cargo:rerun-if-changed=linker.ld");
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:linker_script={}", dir.join("linker.ld").display());
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cc = env::var("SH4_CC").unwrap_or_else(|_| "sh4-linux-gnu-gcc".into());
    let mut objs = vec![];
    for src in ["start.S", "user.S"] {
        let obj = out.join(format!("{src}.o"));
        run(Command::new(&cc)
            .args(["-m4-nofpu", "-ml", "-O2", "-ffreestanding", "-fno-pic", "-c"])
            .arg(format!("-I{}", env::var("DEP_SH4MM_ASM_INCLUDE").expect("sh4-mm's include dir")))
            .arg(dir.join("asm").join(src))
            .arg("-o")
            .arg(&obj));
        objs.push(obj);
    }
    let lib = out.join("libsh4rt.a");
    let _ = std::fs::remove_file(&lib);
    run(Command::new("sh4-linux-gnu-ar").arg("crs").arg(&lib).args(&objs));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static:+whole-archive=sh4rt");
}
