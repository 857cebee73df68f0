#!/usr/bin/env bash
# Runs every suite — C unit tests, luacheck (one test per file), busted specs (one test per
# busted test, each spec file in its own process with a deadline) — and ends with one line
# "N passed, N failed". Exit status is non-zero if anything failed or a suite could not run.
#   TEST_ONLY=unit|fuzz|lint|spec   run one suite (fuzz: each fuzz corpus replayed, one test
#                                   per target; the libFuzzer runs are `make fuzz`)
#   SPEC=tests/spec/x_spec.lua run one spec file
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SPEC_TIMEOUT=${SPEC_TIMEOUT:-300}
export BUILD
export LUA_PATH="tests/lib/?.lua;lua/?.lua;;"
export LUA_CPATH="$BUILD/?.so;;"
if [[ "$BUILD" == *asan* ]]; then
    # Sanitized: timenetd and the unit tests (a leak or an error fails the process). The Lua
    # module is built without sanitizers (Makefile), so lua5.4 needs no preloaded runtime.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

pass=0
fail=0
failed_names=()
only=${TEST_ONLY:-all}

record() { # name, ok(0/1)
    if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); failed_names+=("$1"); fi
}

# --- C unit tests: "ok NAME" / "not ok NAME: why", one process per test.
if [ "$only" = all ] || [ "$only" = unit ]; then
    echo "== C unit tests"
    out=$(timeout -k 5 600 "$BUILD/unit-tests" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E '^(not )?ok ' || true
    n_ok=$(printf '%s\n' "$out" | grep -cE '^ok ')
    n_bad=$(printf '%s\n' "$out" | grep -cE '^not ok ')
    pass=$((pass + n_ok))
    fail=$((fail + n_bad))
    if [ "$rc" != 0 ] && [ "$n_bad" = 0 ]; then
        record "unit-tests runner (exit $rc)" 1
        printf '%s\n' "$out" | tail -20
    fi
    while read -r l; do failed_names+=("unit: ${l#not ok }"); done < <(printf '%s\n' "$out" | grep -E '^not ok ')
fi

# --- fuzz corpora: every input of tests/fuzz/corpus/NAME replayed through the target's
# plain driver ($BUILD/fuzz-replay/NAME, sanitized in the asan build): one test per target.
if [ "$only" = all ] || [ "$only" = fuzz ]; then
    echo "== fuzz corpora"
    for src in tests/fuzz/fuzz_*.c; do
        t=${src#tests/fuzz/fuzz_}
        t=${t%.c}
        if out=$(timeout -k 5 300 "$BUILD/fuzz-replay/$t" "tests/fuzz/corpus/$t" 2>&1); then
            echo "ok fuzz corpus $t: $(printf '%s\n' "$out" | tail -1)"
            record "fuzz corpus $t" 0
        else
            echo "not ok fuzz corpus $t"
            printf '%s\n' "$out" | tail -30 | sed 's/^/    /'
            record "fuzz corpus $t" 1
        fi
    done
fi

# --- luacheck: one test per Lua file we ship or test with.
if [ "$only" = all ] || [ "$only" = lint ]; then
    echo "== luacheck"
    while IFS= read -r f; do
        if out=$(luacheck --no-color -q "$f" 2>&1) && luac5.4 -p "$f" 2>/dev/null; then
            record "$f" 0
        else
            echo "not ok luacheck $f"
            printf '%s\n' "$out" | sed 's/^/    /'
            luac5.4 -p "$f" 2>&1 | sed 's/^/    /'
            record "luacheck $f" 1
        fi
    done < <(find policies lua tests examples -name '*.lua' 2>/dev/null | sort)
    echo "luacheck: $pass passed so far"
fi

# --- busted specs: TAP per file; a spec that dies or hangs counts as failed.
if [ "$only" = all ] || [ "$only" = spec ]; then
    specs=${SPEC:-$(ls tests/spec/*_spec.lua 2>/dev/null)}
    for spec in $specs; do
        echo "== $spec"
        start=$(date +%s)
        out=$(timeout -k 10 "$SPEC_TIMEOUT" lua5.4 /usr/bin/busted -o TAP "$spec" 2>&1)
        rc=$?
        secs=$(( $(date +%s) - start ))
        n_ok=$(printf '%s\n' "$out" | grep -cE '^ok [0-9]+')
        n_bad=$(printf '%s\n' "$out" | grep -cE '^not ok [0-9]+')
        planned=$(printf '%s\n' "$out" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p' | tail -1)
        printf '%s\n' "$out" | grep -E '^(not )?ok [0-9]+' | sed 's/^/  /'
        if [ "$n_bad" -gt 0 ] || [ -z "$planned" ]; then printf '%s\n' "$out" | grep -vE '^ok [0-9]+' | tail -80 | sed 's/^/    /'; fi
        pass=$((pass + n_ok))
        fail=$((fail + n_bad))
        while read -r l; do failed_names+=("$spec: $l"); done < <(printf '%s\n' "$out" | grep -E '^not ok [0-9]+')
        if [ -z "$planned" ]; then
            record "$spec: did not finish (exit $rc after ${secs}s; timeout ${SPEC_TIMEOUT}s)" 1
        elif [ "$planned" -gt $((n_ok + n_bad)) ]; then
            fail=$((fail + planned - n_ok - n_bad))
            failed_names+=("$spec: $((planned - n_ok - n_bad)) tests without a result")
        fi
        echo "   (${secs}s)"
    done
fi

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "Failed:"
    printf '  %s\n' "${failed_names[@]}"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
