# Sourced by scripts/qemu-run.sh and scripts/gxemul-run.sh: turns a kernel's
# console log into the runners' common exit code.
#
#   emu_verdict NAME LOG    (after the emulator has ended or been stopped)
#
# Exit codes (the same for every emulator):
#   n   the kernel's own verdict from its last "@@EXIT n@@" (0 = all tests
#       passed; 126 = TLB multiple hit, printed by runtime/asm/flash.S)
#   125 the emulator ended without "@@EXIT n@@" (reset, exception with BL=1,
#       emulator error)      124 is reported by the runner itself (a hang)
# The log gets a line "target: P passed, F failed, S skipped" when the kernel
# announced "running N tests"; tests that never reported count as failed,
# skipped ones ("test X ... skipped (why)") as neither.
emu_verdict() {
    local name=$1 log=$2 planned passed failed skipped missing=0 code
    planned=$(sed -n 's/^running \([0-9]*\) tests.*/\1/p' "$log" | head -n 1 | tr -d '\r')
    passed=$(grep -c '^test .* \.\.\. ok' "$log")
    failed=$(grep -c '^test .* \.\.\. FAILED' "$log")
    skipped=$(grep -c '^test .* \.\.\. skipped' "$log")
    if [ -n "$planned" ] && [ $((passed + failed + skipped)) -lt "$planned" ]; then
        missing=$((planned - passed - failed - skipped))
    fi
    code=$(sed -n 's/.*@@EXIT \([0-9]*\)@@.*/\1/p' "$log" | tail -n 1 | tr -d '\r')
    if [ -n "$planned" ]; then
        echo "target: $passed passed, $((failed + missing)) failed, $skipped skipped" | tee -a "$log"
    fi
    if [ -z "$code" ]; then
        echo "$name: FAILED: no @@EXIT@@ sentinel (reset, multi-hit, exception with BL=1 or emulator error); $missing test(s) never ran" >&2
        return 125
    fi
    if [ "$missing" -gt 0 ]; then
        echo "$name: FAILED: $missing test(s) never ran" >&2
        return 1
    fi
    return "$code"
}
