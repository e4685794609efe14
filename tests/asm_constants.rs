//! Item 7 of issue 11: the constants assembly shares with Rust have one
//! source, `sh4_mm::hw::ASM_CONSTANTS`. `boot/sh4mm_asm.h` (included by
//! every assembly file that needs them) must be exactly what that table
//! renders to, and no assembly file may spell one of the register addresses
//! or the PTEL mask as a literal (which would bypass the header).
use std::path::PathBuf;

const HEADER: &str = "boot/sh4mm_asm.h";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The header `table` renders to.
fn render(table: &[(&str, u32, &str)]) -> String {
    let mut s = String::from(
        "/* Generated from sh4_mm::hw::ASM_CONSTANTS by tests/asm_constants.rs\n \
         * (SH4MM_UPDATE_ASM_H=1 cargo test --test asm_constants); do not edit. */\n\
         #ifndef SH4MM_ASM_H\n#define SH4MM_ASM_H\n",
    );
    for (name, value, what) in table {
        s += &format!("/* {what} */\n#define SH4MM_{name} 0x{value:08x}\n");
    }
    s + "#endif\n"
}

/// Assembly files of the workspace and the out-of-tree example.
fn asm_files() -> Vec<PathBuf> {
    let mut v = vec![];
    for dir in ["boot", "runtime/asm", "kernel/asm", "examples/dreamcast-like/boot"] {
        let Ok(rd) = std::fs::read_dir(root().join(dir)) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "S") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// The shared constants an assembly file spells as literals (register
/// addresses and the PTEL mask: values too specific to be anything else).
fn literals_in(text: &str, table: &[(&str, u32, &str)]) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    table
        .iter()
        .filter(|(name, ..)| *name != "PTE_V")
        .filter(|(_, value, _)| lower.contains(&format!("0x{value:08x}")))
        .map(|(name, ..)| name.to_string())
        .collect()
}

#[test]
fn generated_asm_header_matches_the_rust_constants() {
    let want = render(sh4_mm::hw::ASM_CONSTANTS);
    let path = root().join(HEADER);
    if std::env::var_os("SH4MM_UPDATE_ASM_H").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{HEADER} differs from sh4_mm::hw::ASM_CONSTANTS: regenerate it with \
         SH4MM_UPDATE_ASM_H=1 cargo test --test asm_constants\n--- want:\n{want}"
    );
}

#[test]
fn assembly_uses_the_header_not_literals() {
    let files = asm_files();
    assert!(files.len() >= 3, "assembly files not found: {files:?}");
    let mut bad = vec![];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for name in literals_in(&text, sh4_mm::hw::ASM_CONSTANTS) {
            bad.push(format!("{}: SH4MM_{name} spelled as a literal", f.strip_prefix(root()).unwrap_or(f).display()));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The files that use the MMU registers include the header.
    for f in ["runtime/asm/start.S", "runtime/asm/flash.S"] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        assert!(text.contains("#include \"sh4mm_asm.h\""), "{f} does not include sh4mm_asm.h");
    }
}

#[test]
fn the_checks_catch_a_mismatch() {
    // A table that differs in one value renders differently...
    let mut table = sh4_mm::hw::ASM_CONSTANTS.to_vec();
    table[0].1 ^= 4;
    assert_ne!(render(&table), render(sh4_mm::hw::ASM_CONSTANTS));
    // ...and a hard-coded address is found, in either case.
    let found = literals_in("\t.long\t0xFF00000C\t/* TEA */\n", sh4_mm::hw::ASM_CONSTANTS);
    assert_eq!(found, ["TEA"]);
    assert!(literals_in("\t.long\tSH4MM_TEA\n", sh4_mm::hw::ASM_CONSTANTS).is_empty());
}
