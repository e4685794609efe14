//! Exact instruction counts from a QEMU instruction trace (host tool used
//! by `scripts/bench.sh`; see `kernel/src/bench.rs` for the protocol).
//!
//! ```text
//! trace_count record TRACE REGIONS MARKER
//!     TRACE: `qemu-system-sh4 -singlestep -d exec,nochain` log (a FIFO is
//!     fine: it is read once, as a stream). Every line `Trace N: HOST [CS/PC/
//!     FLAGS/CFLAGS]` is one executed instruction. MARKER is the address of
//!     sh4mm_bench_mark; region k is everything after the k-th odd call's
//!     TCNT0 load up to and including the next call's load. Writes the PCs
//!     of every region to REGIONS.
//! trace_count report REGIONS CONSOLE IMAGE BASE NM PROFILE
//!     CONSOLE: the bench kernel's console (its `bench-region:` lines) from
//!     the run under -icount shift=10; IMAGE: the raw kernel image loaded at
//!     BASE (to check that a function was entered by a call); NM: `nm -C`
//!     output, to name and find functions. Prints one result line per
//!     reported region, writes a per-function profile of the large ones to
//!     PROFILE, and fails if any count cannot be made or if any region's
//!     -icount TMU count disagrees with its trace.
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

fn hex(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16)
        .map_err(|e| format!("bad hex {s:?}: {e}"))
}

/// The PC of a `Trace` line: the second `/`-separated field inside `[...]`.
fn trace_pc(line: &[u8]) -> Option<u32> {
    if !line.starts_with(b"Trace ") {
        return None;
    }
    let open = line.iter().position(|&c| c == b'[')?;
    let mut fields = line[open + 1..].split(|&c| c == b'/');
    fields.next()?;
    let pc = std::str::from_utf8(fields.next()?).ok()?;
    u32::from_str_radix(pc, 16).ok()
}

/// QEMU writes its log a line at a time: a bigger pipe buffer (if TRACE is
/// a FIFO) means far fewer wake-ups of this reader. Best effort.
fn grow_pipe(f: &File) {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    }
    const F_SETPIPE_SZ: i32 = 1031;
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(1 << 20);
    // SAFETY: fcntl on a descriptor we own; fails harmlessly on a non-pipe.
    unsafe { fcntl(f.as_raw_fd(), F_SETPIPE_SZ, max) };
}

fn record(trace: &str, out: &str, marker: u32) -> Result<(), String> {
    let f = File::open(trace).map_err(|e| format!("{trace}: {e}"))?;
    grow_pipe(&f);
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut w = BufWriter::new(File::create(out).map_err(|e| format!("{out}: {e}"))?);
    let load = marker + 2; // the marker's TCNT0 load
    let (mut lines, mut regions, mut repeats) = (0u64, 0u32, 0u64);
    let mut inside = false;
    let mut cur: Vec<u32> = Vec::new();
    let mut line = Vec::new();
    let mut prev = u32::MAX;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)
            .map_err(|e| format!("{trace}: {e}"))?
            == 0
        {
            break;
        }
        let Some(pc) = trace_pc(&line) else { continue };
        lines += 1;
        if pc == prev {
            repeats += 1;
        }
        prev = pc;
        if inside {
            cur.push(pc);
            if pc == load {
                w.write_all(&(cur.len() as u32).to_le_bytes())
                    .map_err(|e| e.to_string())?;
                for p in &cur {
                    w.write_all(&p.to_le_bytes()).map_err(|e| e.to_string())?;
                }
                cur.clear();
                inside = false;
                regions += 1;
            }
        } else if pc == load {
            inside = true;
        }
    }
    w.flush().map_err(|e| e.to_string())?;
    if inside {
        return Err(format!("trace ended inside region {regions}"));
    }
    eprintln!("trace_count: {lines} instructions traced, {regions} regions, {repeats} consecutive repeats of a PC");
    Ok(())
}

fn read_regions(path: &str) -> Result<Vec<Vec<u32>>, String> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("{path}: {e}"))?;
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let n = words[i] as usize;
        out.push(
            words
                .get(i + 1..i + 1 + n)
                .ok_or("truncated regions file")?
                .to_vec(),
        );
        i += 1 + n;
    }
    Ok(out)
}

/// Addresses of the functions whose name ends with `suffix`.
fn sym_addrs(names: &BTreeMap<u32, String>, suffix: &str) -> Vec<u32> {
    names
        .iter()
        .filter(|(_, n)| n.ends_with(suffix))
        .map(|(&a, _)| a)
        .collect()
}

/// Instructions per function (the symbol at or below each PC), largest first.
fn profile(pcs: &[u32], names: &BTreeMap<u32, String>) -> Vec<(usize, String)> {
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for &pc in pcs {
        let name = names
            .range(..=pc)
            .next_back()
            .map(|(_, n)| n.as_str())
            .unwrap_or("?");
        *per.entry(name).or_default() += 1;
    }
    let mut v: Vec<(usize, String)> = per.into_iter().map(|(n, c)| (c, n.to_string())).collect();
    v.sort_by_key(|b| std::cmp::Reverse(b.0));
    v
}

/// Shortens a demangled Rust path for the profile: generic arguments dropped.
fn short(name: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in name.chars() {
        match c {
            '<' => {
                depth += 1;
                if depth == 1 {
                    out.push('<');
                }
            }
            '>' => {
                depth -= 1;
                if depth == 0 {
                    out.push('>');
                }
            }
            _ if depth <= 1 => out.push(c),
            _ => {}
        }
    }
    out
}

/// `nm -C` output: address -> name (text symbols; the hash suffix dropped).
fn read_nm(path: &str) -> Result<BTreeMap<u32, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let mut it = l.splitn(3, ' ');
        let (Some(a), Some(t), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if !matches!(t, "t" | "T") {
            continue;
        }
        let name = match name.rfind("::h") {
            Some(i) if name.len() - i == 19 => &name[..i],
            _ => name,
        };
        if let Ok(a) = hex(a) {
            m.entry(a).or_insert_with(|| name.to_string());
        }
    }
    Ok(m)
}

/// Whether the 16-bit instruction at `pc` is a subroutine call
/// (JSR @Rn 0100nnnn00001011, BSR 1011dddddddddddd, BSRF Rn 0000nnnn00000011).
fn is_call(image: &[u8], base: u32, pc: u32) -> bool {
    let Some(off) = pc.checked_sub(base).map(|o| o as usize) else {
        return false;
    };
    let Some(b) = image.get(off..off + 2) else {
        return false;
    };
    let op = u16::from_le_bytes([b[0], b[1]]);
    op & 0xF0FF == 0x400B || op & 0xF000 == 0xB000 || op & 0xF0FF == 0x0003
}

/// Instructions from the first execution of `entry` to the return to the
/// caller: the call's delay slot is the line before the entry, so the return
/// address is that slot + 2.
fn count_fn(
    pcs: &[u32],
    entries: &[u32],
    image: &[u8],
    base: u32,
) -> Result<(usize, usize, u32), String> {
    let i = pcs
        .iter()
        .position(|p| entries.contains(p))
        .ok_or(format!("{entries:x?} never executed in the region"))?;
    let entry = pcs[i];
    let slot = *pcs
        .get(i.wrapping_sub(1))
        .ok_or("function entered on the region's first line")?;
    if !is_call(image, base, slot - 2) {
        return Err(format!(
            "{entry:#x} not entered by a call (line before it at {slot:#x})"
        ));
    }
    let ret = slot + 2;
    let n = pcs[i..]
        .iter()
        .position(|&p| p == ret)
        .ok_or(format!("{entry:#x} never returned to {ret:#x}"))?;
    Ok((i, n, entry))
}

/// Instructions from the first execution of the vector at `vector` to the
/// retry of the instruction that raised the exception (the line before).
fn count_exc(pcs: &[u32], vector: u32) -> Result<(usize, usize), String> {
    let i = pcs
        .iter()
        .position(|&p| p == vector)
        .ok_or(format!("vector {vector:#x} never executed in the region"))?;
    let fault = *pcs
        .get(i.wrapping_sub(1))
        .ok_or("vector on the region's first line")?;
    let n = pcs[i..]
        .iter()
        .position(|&p| p == fault)
        .ok_or(format!("{fault:#x} never retried"))?;
    Ok((i, n))
}

fn report(
    regions: &str,
    console: &str,
    image: &str,
    base: u32,
    nm: &str,
    prof: &str,
) -> Result<(), String> {
    let regions = read_regions(regions)?;
    let text = std::fs::read_to_string(console).map_err(|e| format!("{console}: {e}"))?;
    let image = std::fs::read(image).map_err(|e| format!("{image}: {e}"))?;
    let names = read_nm(nm)?;
    let mut prof = BufWriter::new(File::create(prof).map_err(|e| format!("{prof}: {e}"))?);
    let vectors: Vec<u32> = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("bench-vectors: "))
        .ok_or("no bench-vectors line in the console")?
        .split(' ')
        .map(hex)
        .collect::<Result<_, _>>()?;
    let descs: Vec<Vec<&str>> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("bench-region: "))
        .map(|d| d.splitn(5, " | ").collect())
        .collect();
    if descs.len() != regions.len() {
        return Err(format!(
            "{} regions in the trace, {} described on the console",
            regions.len(),
            descs.len()
        ));
    }
    if let Some(d) = descs
        .iter()
        .find(|d| d.len() != 5 || d[3].parse::<u64>().is_err())
    {
        return Err(format!("bad description {d:?}"));
    }
    // Under -icount the second marker's TCNT0 value counts every line of the
    // region but its own load, less one per exception (QEMU does not count
    // an instruction that raised an exception; the trace shows it twice).
    let icount_expected = |pcs: &[u32]| pcs.len() as u64 - count_exceptions(pcs, &vectors);
    // Ticks per instruction from the calibration region (the first region
    // named "calibration..."): one fitted constant, every other region checked.
    let cal = descs
        .iter()
        .position(|d| d[4].starts_with("calibration"))
        .ok_or("no calibration region")?;
    let rate = descs[cal][3].parse::<u64>().unwrap() as f64 / icount_expected(&regions[cal]) as f64;
    let (mut errors, mut agree, mut differ) = (0, 0, Vec::new());
    println!("# name = exact count [what is counted] | whole region between the markers: trace lines / -icount TMU");
    for (pcs, d) in regions.iter().zip(&descs) {
        let (k, how, shown, name) = (d[0], d[1], d[2], d[4]);
        let ticks: u64 = d[3].parse().unwrap();
        let tmu = (ticks as f64 / rate).round() as u64;
        let expected = icount_expected(pcs);
        if tmu == expected {
            agree += 1;
        } else {
            differ.push(format!(
                "region {k} ({name}): trace {} lines, expected TMU {expected}, got {tmu}",
                pcs.len()
            ));
        }
        if shown != "report" {
            continue;
        }
        let span = match how.split_once(' ') {
            Some(("fn", a)) => hex(a).and_then(|a| count_fn(pcs, &[a], &image, base)),
            Some(("sym", suffix)) => count_fn(pcs, &sym_addrs(&names, suffix), &image, base),
            Some(("exc", a)) => hex(a).and_then(|a| count_exc(pcs, a).map(|(i, n)| (i, n, a))),
            _ => Ok((0, pcs.len(), 0)),
        };
        let (i, n, entry) = match span {
            Ok(x) => x,
            Err(e) => {
                errors += 1;
                println!("{name} = FAILED: {e}");
                continue;
            }
        };
        let what = match how.split(' ').next() {
            Some("fn" | "sym") => {
                format!(
                    "{}: entry to return",
                    short(names.get(&entry).map(String::as_str).unwrap_or("?"))
                )
            }
            Some("exc") => format!("vector {entry:#x} to the retried instruction"),
            _ => "whole region".to_string(),
        };
        println!("{name} = {n} [{what}] | region {} / {tmu}", pcs.len());
        if n >= 100 {
            writeln!(prof, "{name}: {n} instructions").map_err(|e| e.to_string())?;
            for (c, f) in profile(&pcs[i..i + n], &names).into_iter().take(12) {
                writeln!(prof, "  {c:>10}  {}", short(&f)).map_err(|e| e.to_string())?;
            }
        }
    }
    println!(
        "# cross-check: {agree} of {} regions: -icount TMU count = trace lines - exceptions taken{}",
        regions.len(),
        if differ.is_empty() { String::new() } else { format!("; differ: {}", differ.join("; ")) }
    );
    prof.flush().map_err(|e| e.to_string())?;
    if errors > 0 || !differ.is_empty() {
        return Err(format!(
            "{errors} count(s) failed, {} region(s) disagree",
            differ.len()
        ));
    }
    Ok(())
}

/// Exceptions taken in a region: lines at one of the exception vectors.
fn count_exceptions(pcs: &[u32], vectors: &[u32]) -> u64 {
    pcs.iter().filter(|p| vectors.contains(p)).count() as u64
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.get(1..) {
        Some(["record", trace, out, marker]) => hex(marker).and_then(|m| record(trace, out, m)),
        Some(["report", regions, console, image, base, nm, prof]) => {
            hex(base).and_then(|b| report(regions, console, image, b, nm, prof))
        }
        _ => Err("usage: trace_count record TRACE REGIONS MARKER | report REGIONS CONSOLE IMAGE BASE NM PROFILE".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trace_count: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
