#!/usr/bin/env bash
# Runs the benches (DESIGN.md "Benchmarks") and merges their results into var/bench/results.json;
# prints a summary table on stdout, progress on stderr. Usage: tests/bench/run.sh [name...]
# (`make bench ONLY=name`). BUILD selects the build directory holding the bench binaries.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
OUT=var/bench
RESULTS=$OUT/results.json
TIMEOUT_S=${BENCH_TIMEOUT_S:-900} # per bench: a hung bench fails instead of blocking the run

# Registry, in run order: "name|command". A bench command prints one JSON object
# {"params", "figures", "floors"} on stdout (floors measured in the same run), progress on
# stderr, and exits non-zero on failure; a dimensionless figure "ratio" is shown last in the
# table, described by params.ratio. This script adds "name" and "machine". To add a bench:
# write tests/bench/NAME.c (the Makefile builds it as $(BUILD)/bench-NAME) or any script,
# and add its line here.
BENCHES=(
    "stream_encrypted|$BUILD/bench-stream"
    "hook_call|$BUILD/bench-hook"
    "reload_under_load|$BUILD/bench-reload"
    "dedup|$BUILD/bench-dedup"
    "relay_signed|$BUILD/bench-relay_signed"
    "relay_unsigned|$BUILD/bench-relay_unsigned"
    # network benches: real nodes through the test harness (tests/bench/netbench.lua)
    "idle_conns|lua5.4 tests/bench/netbench.lua idle_conns"
    "load_20x1000|lua5.4 tests/bench/netbench.lua load_20x1000"
    "net_n20_signed|lua5.4 tests/bench/netbench.lua net_n20_signed"
    "net_n20_unsigned|lua5.4 tests/bench/netbench.lua net_n20_unsigned"
    "masternodes_100|lua5.4 tests/bench/netbench.lua masternodes_100"
)

names() { for b in "${BENCHES[@]}"; do echo "${b%%|*}"; done; }

selected=("$@")
if [ ${#selected[@]} -eq 0 ]; then mapfile -t selected < <(names); fi
for n in "${selected[@]}"; do
    if ! names | grep -qx -- "$n"; then
        echo "bench: unknown bench '$n'; known: $(names | tr '\n' ' ')" >&2
        exit 2
    fi
done

mkdir -p "$OUT/last"
done_args=()
failed=()
for b in "${BENCHES[@]}"; do
    name=${b%%|*}
    cmd=${b#*|}
    printf '%s\n' "${selected[@]}" | grep -qx -- "$name" || continue
    echo "bench: $name: $cmd" >&2
    start=$SECONDS
    # shellcheck disable=SC2086 # the command is a word list by design
    if timeout -k 5 "$TIMEOUT_S" $cmd >"$OUT/last/$name.json"; then
        echo "bench: $name: done in $((SECONDS - start)) s" >&2
        done_args+=("$name=$OUT/last/$name.json")
    else
        echo "bench: $name: FAILED (exit $?) after $((SECONDS - start)) s; results.json keeps its" \
            "previous entry" >&2
        failed+=("$name")
    fi
done

if [ ${#done_args[@]} -gt 0 ]; then
    lua5.4 tests/bench/results.lua "$RESULTS" "${done_args[@]}" || exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench: FAILED: ${failed[*]}" >&2
    exit 1
fi
