//! On-target test runner: every registered test runs in the booted kernel
//! and prints one line. A test returns `Err(reason)` to fail; a panic or an
//! oops ends the run (the host runner counts the missing tests as failed).

use alloc::string::String;

pub type TestFn = fn() -> Result<(), String>;

static EXTRA_FAILURE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
static EXTRA_LEAK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Selftest: register one test that passes but leaves state behind.
pub fn leak_one_more() {
    EXTRA_LEAK.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Selftest: register one test that fails.
pub fn fail_one_more() {
    EXTRA_FAILURE.store(true, core::sync::atomic::Ordering::Relaxed);
}

fn deliberate_failure() -> Result<(), String> {
    Err("deliberate failure (selftest=fail)".into())
}

pub fn run_all() -> (u32, u32) {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let extra: &[(&str, TestFn)] = if EXTRA_FAILURE.load(core::sync::atomic::Ordering::Relaxed) {
        &[("selftest_deliberate_failure", deliberate_failure)]
    } else if EXTRA_LEAK.load(core::sync::atomic::Ordering::Relaxed) {
        &[("selftest_deliberate_leak", crate::tests::leaky)]
    } else {
        &[]
    };
    // A skip entry naming no test would silently skip nothing: a failure.
    let unknown = crate::emu::NOT_MEANINGFUL.iter().find(|(t, _, _)| !crate::tests::TESTS.iter().any(|(n, _)| n == t));
    println!("running {} tests", crate::tests::TESTS.len() + extra.len() + usize::from(unknown.is_some()));
    if let Some((t, _, _)) = unknown {
        println!("test emulator_skip_list ... FAILED: names no test: {t}");
        failed += 1;
    }
    for (name, f) in crate::tests::TESTS.iter().chain(extra) {
        if let Some(why) = crate::emu::skip_reason(name) {
            println!("test {name} ... skipped ({why})");
            skipped += 1;
            continue;
        }
        // Every test leaves the system as it found it, pass or fail (the
        // MMU bring-up creates the state the others share).
        let before = crate::tests::system_state();
        let mut r = f();
        let after = crate::tests::system_state();
        if r.is_ok() && before != after && *name != "mmu_bringup" {
            r = Err(alloc::format!("left the system changed: {before} -> {after}"));
        }
        match r {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(why) => {
                println!("test {name} ... FAILED: {why}");
                failed += 1;
            }
        }
    }
    if skipped > 0 {
        println!("{skipped} skipped on {}", crate::emu::current().name());
    }
    (passed, failed)
}

/// `Err` with a formatted reason unless `cond`.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($arg)*));
        }
    };
}

/// `Err` unless `a == b`, showing both.
#[macro_export]
macro_rules! check_eq {
    ($a:expr, $b:expr, $($arg:tt)*) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(alloc::format!("{}: {:?} != {:?}", alloc::format!($($arg)*), a, b));
        }
    }};
}
