#!/usr/bin/env bash
# sh4-mm toolchain bootstrap: everything the project needs on a fresh machine.
#
#   scripts/bootstrap.sh            # all steps (idempotent; cached under ~/.cache/sh4-mm)
#   scripts/bootstrap.sh apt rustup # only some steps
#
# Steps: apt, rustup, libgccjit, codegen.  Each prints "[bootstrap] ..." progress
# lines and, on failure, one line "bootstrap: FAILED: <reason>" and exits non-zero.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/toolchain.env
. "$HERE/toolchain.env"

say()  { printf '[bootstrap] %s\n' "$*" >&2; }
fail() { printf 'bootstrap: FAILED: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        fail "need root (or sudo) to run: $*"; fi
}

# ---------------------------------------------------------------- apt
step_apt() {
    local missing=()
    for p in $APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then say "apt: all packages present"; return; fi
    say "apt: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 \
        || fail "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
        > "$CACHE/apt.log" 2>&1 || fail "apt-get install ${missing[*]} failed (see $CACHE/apt.log)"
}

# ---------------------------------------------------------------- rustup
step_rustup() {
    command -v rustup >/dev/null || fail "rustup not found"
    local hash
    hash=$(rustc +"$RUST_TOOLCHAIN" -vV 2>/dev/null | sed -n 's/^commit-hash: //p') \
        || fail "toolchain '$RUST_TOOLCHAIN' is not installed"
    [ "$hash" = "$RUST_COMMIT" ] \
        || fail "toolchain '$RUST_TOOLCHAIN' is rustc $hash, expected $RUST_COMMIT (see rust-toolchain.toml)"
    local have
    have=$(rustup component list --installed --toolchain "$RUST_TOOLCHAIN")
    for c in rust-src rustc-dev clippy rustfmt; do
        if ! grep -q "^$c" <<<"$have"; then
            say "rustup: adding component $c"
            rustup component add "$c" --toolchain "$RUST_TOOLCHAIN" >/dev/null 2>&1 \
                || fail "rustup component add $c failed"
        fi
    done
    say "rustup: $RUST_TOOLCHAIN ($hash) with rust-src, rustc-dev, clippy, rustfmt"
}

# ---------------------------------------------------------------- libgccjit (sh4 cross)
step_libgccjit() {
    if [ -f "$GCC_PREFIX/.done" ] && [ -f "$GCC_PREFIX/lib/libgccjit.so" ]; then
        say "libgccjit: cached at $GCC_PREFIX"; return; fi
    local tarball=/usr/src/gcc-12/gcc-12.2.0-dfsg.tar.xz
    [ -f "$tarball" ] || fail "$tarball missing (package gcc-12-source)"
    local work="$CACHE/gcc-work"
    rm -rf "$work" "$GCC_PREFIX"; mkdir -p "$work/build"
    say "libgccjit: unpacking $tarball"
    tar -C "$work" -xf "$tarball" || fail "cannot unpack $tarball"
    local src="$work/gcc-12.2.0"
    say "libgccjit: applying Debian gcc-gfdl-build.diff"
    patch -d "$src" -p2 -s < /usr/src/gcc-12/patches/gcc-gfdl-build.diff \
        || fail "gcc-gfdl-build.diff does not apply"
    say "libgccjit: applying patches/gcc (sh_treg_combine off; libgccjit fixes for rustc_codegen_gcc)"
    for p in "$HERE"/../patches/gcc/*.diff; do
        patch -d "$src" -p1 -s < "$p" || fail "$(basename "$p") does not apply"
    done
    grep -q 'SH4MM: disabled' "$src/gcc/config/sh/sh_treg_combine.cc" \
        || fail "sh_treg_combine patch did not take effect"
    say "libgccjit: configuring (log: $work/build.log)"
    ( cd "$work/build" && CFLAGS="-O2 -g0" CXXFLAGS="-O2 -g0" "$src/configure" \
        --build=x86_64-linux-gnu --host=x86_64-linux-gnu --target=sh4-linux-gnu \
        --prefix="$GCC_PREFIX" --with-cpu=m4-nofpu --enable-languages=jit,c --enable-host-shared \
        --disable-bootstrap --disable-multilib --disable-nls --disable-werror \
        --disable-libsanitizer --disable-libssp --disable-libquadmath --disable-libgomp \
        --disable-libatomic --disable-libitm --disable-libvtv --disable-libstdcxx \
        --without-headers --with-newlib --with-gnu-as --with-gnu-ld \
        --with-as=/usr/bin/sh4-linux-gnu-as --with-ld=/usr/bin/sh4-linux-gnu-ld \
        ) > "$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; fail "GCC configure failed (log: $work/build.log)"; }
    local jobs; jobs=$(nproc)
    say "libgccjit: building with -j$jobs (about 6-10 minutes on 2 cores)"
    local t0=$SECONDS
    ( cd "$work/build" && make -j"$jobs" all-gcc ) >> "$work/build.log" 2>&1 \
        || { tail -30 "$work/build.log" >&2; fail "GCC build failed (log: $work/build.log)"; }
    ( cd "$work/build" && make install-gcc ) >> "$work/build.log" 2>&1 \
        || { tail -30 "$work/build.log" >&2; fail "GCC install failed (log: $work/build.log)"; }
    [ -f "$GCC_PREFIX/lib/libgccjit.so" ] || fail "GCC installed but $GCC_PREFIX/lib/libgccjit.so is missing"
    say "libgccjit: built in $((SECONDS - t0)) s"
    touch "$GCC_PREFIX/.done"
    rm -rf "$work"
}

# ---------------------------------------------------------------- rustc_codegen_gcc
step_codegen() {
    local sysroot; sysroot=$(rustc +"$RUST_TOOLCHAIN" --print sysroot)
    local src="$sysroot/lib/rustlib/rustc-src/rust/compiler/rustc_codegen_gcc"
    [ -d "$src" ] || fail "$src missing (rustup component rustc-dev)"
    [ -f "$GCC_PREFIX/lib/libgccjit.so" ] || fail "libgccjit not built (run: scripts/bootstrap.sh libgccjit)"
    if [ ! -f "$CG_DIR/.done" ]; then
        say "codegen: building rustc_codegen_gcc (--no-default-features) from $src"
        rm -rf "$CG_DIR"; mkdir -p "$CG_DIR"
        cp -r "$src/." "$CG_DIR/src-copy"
        rm -f "$CG_DIR/src-copy/rust-toolchain"
        # librustc_driver links against the toolchain's libLLVM, which lives in
        # <sysroot>/lib rather than in the rustlib search path.
        ( cd "$CG_DIR/src-copy" && RUSTUP_TOOLCHAIN="$RUST_TOOLCHAIN" CARGO_TARGET_DIR="$CG_DIR/target" \
            RUSTFLAGS="-L native=$sysroot/lib" cargo build --release --no-default-features --lib ) > "$CG_DIR/build.log" 2>&1 \
            || { tail -30 "$CG_DIR/build.log" >&2; fail "rustc_codegen_gcc build failed (log: $CG_DIR/build.log)"; }
        touch "$CG_DIR/.done"
    fi
    [ -f "$CG_BACKEND" ] || fail "$CG_BACKEND missing after build"
    # rustc_codegen_gcc loads <sysroot>/lib/rustlib/<host>/codegen-backends/lib/<llvm-target>/libgccjit.so
    local dir="$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/codegen-backends/lib/sh4-unknown-none"
    mkdir -p "$dir"
    ln -sfn "$GCC_PREFIX/lib/libgccjit.so" "$dir/libgccjit.so"
    say "codegen: $CG_BACKEND (libgccjit: $dir/libgccjit.so)"
}

mkdir -p "$CACHE"
steps=("$@"); [ ${#steps[@]} -gt 0 ] || steps=(apt rustup libgccjit codegen)
for s in "${steps[@]}"; do
    case "$s" in
        apt|rustup|libgccjit|codegen) "step_$s" ;;
        *) fail "unknown step '$s' (apt, rustup, libgccjit, codegen)" ;;
    esac
done
