#!/usr/bin/env bash
# `make fuzz`: runs each libFuzzer target for FUZZ_SECONDS with its seed corpus
# (tests/fuzz/corpus/NAME, read only) and a scratch corpus (var/fuzz/NAME/new, where new
# inputs go); crashes land in var/fuzz/NAME/crashes/. Prints one line per target (executions,
# exec/s, corpus, crashes) and keeps them in var/fuzz/summary.txt. Exit status is non-zero
# if a target crashed. Arguments: target names (default: all).
set -u
cd "$(dirname "$0")/../.."
BIN=${FUZZ_BIN:-build/libfuzzer/fuzz}
SECS=${FUZZ_SECONDS:-60}
OUT=var/fuzz
# llvm-symbolizer (llvm-14) for readable stacks; ASan/UBSan stop at the first error.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
command -v llvm-symbolizer >/dev/null || export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer

targets=${*:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
echo "# make fuzz FUZZ_SECONDS=$SECS, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD 2>/dev/null)" >"$summary"
failed=0
for t in $targets; do
    [ -x "$BIN/$t" ] || { echo "$t: no binary $BIN/$t (run make fuzz)"; failed=1; continue; }
    mkdir -p "$OUT/$t/new" "$OUT/$t/crashes"
    log="$OUT/$t/last.log"
    case $t in
    state) max_len=65536 ;; # a 49 KB blob already exceeds the smallest policy memory cap
    http) max_len=12288 ;;  # past TN_HTTP_REQ_MAX (8 KiB)
    *) max_len=4096 ;;
    esac
    "$BIN/$t" -max_total_time="$SECS" -timeout=25 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 -artifact_prefix="$OUT/$t/crashes/" \
        "$OUT/$t/new" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    rate=$([ -n "${execs:-}" ] && [ "${secs:-0}" -gt 0 ] && echo $((execs / secs)) || echo "?")
    seeds=$(ls "tests/fuzz/corpus/$t" | wc -l)
    new=$(ls "$OUT/$t/new" | wc -l)
    crashes=$(ls "$OUT/$t/crashes" | wc -l)
    line=$(printf '%-10s %11s execs %8s exec/s  cov %5s  seeds %3s  new %5s  crashes %s' \
        "$t" "${execs:-?}" "$rate" "${cov:-?}" "$seeds" "$new" "$crashes")
    echo "$line" | tee -a "$summary"
    if [ "$rc" != 0 ]; then
        failed=1
        echo "  $t stopped (exit $rc); log $log; artifacts in $OUT/$t/crashes/:"
        grep -E 'ERROR|invariant failed|runtime error|SUMMARY|Test unit written' "$log" | head -8 | sed 's/^/    /'
    fi
done
[ "$failed" = 0 ] || echo "A target crashed: see tests/fuzz/README.md \"When a target crashes\"."
exit "$failed"
