//! The boot command line and the machine we run on.
//!
//! The command line is read from the Linux/SH boot-parameter page (phys
//! 0x0c01_0000, command line at +0x100), which QEMU r2d fills from
//! `-append` and `scripts/gxemul-run.sh` loads as a raw file (GXemul has no
//! `-append`). On real hardware that page holds whatever the boot loader
//! left, possibly nothing: anything but printable ASCII up to a NUL within
//! 256 bytes is not a command line, and is ignored.
//!
//! The runners add `emu=qemu` / `emu=gxemul`; a test that is meaningless on
//! one emulator is listed in [`NOT_MEANINGFUL`] and reported as skipped there
//! with the reason. Without `emu=` (hardware) every test runs.

/// Where we run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Emu {
    Qemu,
    Gxemul,
    /// No `emu=` word: real hardware, or a runner that did not say.
    Unknown,
}

const CMDLINE_PA_P1: usize = 0x8C01_0100;
const CMDLINE_MAX: usize = 256;

/// The command line, or empty if the page holds no valid one.
pub fn cmdline() -> &'static [u8] {
    // SAFETY: the boot-params page is RAM below the kernel image (QEMU or the
    // runner filled it before boot, or it holds leftovers); we only read its
    // 256-byte command-line field, which nothing writes.
    let all = unsafe { core::slice::from_raw_parts(CMDLINE_PA_P1 as *const u8, CMDLINE_MAX) };
    match all.iter().position(|&b| b == 0) {
        Some(len) if all[..len].iter().all(|b| (0x20..0x7F).contains(b)) => &all[..len],
        _ => &[],
    }
}

/// True if the command line contains `word`.
pub fn has(word: &[u8]) -> bool {
    cmdline().windows(word.len()).any(|w| w == word)
}

impl Emu {
    pub fn name(self) -> &'static str {
        match self {
            Emu::Qemu => "qemu",
            Emu::Gxemul => "gxemul",
            Emu::Unknown => "hardware (no emu= word)",
        }
    }
}

/// The `emu=` word of the command line.
pub fn current() -> Emu {
    if has(b"emu=qemu") {
        Emu::Qemu
    } else if has(b"emu=gxemul") {
        Emu::Gxemul
    } else {
        Emu::Unknown
    }
}

/// Tests that prove nothing on an emulator, with the reason (see
/// docs/EMULATORS.md).
pub static NOT_MEANINGFUL: &[(&str, Emu, &str)] = &[
    (
        "tmu0_interrupt_on_every_instruction_of_the_miss_path",
        Emu::Gxemul,
        "needs -icount exact interrupt placement; GXemul's TMU interrupts come only every 16384 instructions",
    ),
    (
        "interrupt_handler_uses_the_mm_during_every_operation",
        Emu::Gxemul,
        "needs -icount exact interrupt placement; GXemul's TMU interrupts come only every 16384 instructions",
    ),
];

/// Why `test` is skipped here, if it is.
pub fn skip_reason(test: &str) -> Option<&'static str> {
    let here = current();
    NOT_MEANINGFUL.iter().find(|(t, e, _)| *t == test && *e == here).map(|(_, _, why)| *why)
}
