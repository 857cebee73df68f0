#!/usr/bin/env bash
# `make soak` (after peers_spec's long profile): the resilience scenarios of
# tests/spec/resilience_spec.lua with SOAK_SECONDS (default 120) under faults each, then
# sync_spec's "kill -9 between block writes" test (20 kills a run) SOAK_KILL_RUNS times (default
# 3). Every run is bounded; the last line is "N passed, N failed" like make test.
#   SOAK_SECONDS=600 SOAK_SEED=7 tests/soak/run.sh
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SOAK_SECONDS=${SOAK_SECONDS:-120}
SOAK_KILL_RUNS=${SOAK_KILL_RUNS:-3}
export BUILD LUA_PATH="tests/lib/?.lua;lua/?.lua;;" LUA_CPATH="$BUILD/?.so;;"
pass=0
fail=0

echo "== resilience scenarios, ${SOAK_SECONDS} s of faults each"
TN_SOAK_SECONDS=$SOAK_SECONDS TN_SOAK_SEED=${SOAK_SEED:-} SPEC=tests/spec/resilience_spec.lua \
    TEST_ONLY=spec SPEC_TIMEOUT=$((4 * SOAK_SECONDS + 600)) tests/run.sh | tee /tmp/tn-soak.$$ |
    grep -vE '^[0-9]+ passed, [0-9]+ failed$'
line=$(tail -1 /tmp/tn-soak.$$)
rm -f /tmp/tn-soak.$$
pass=$((pass + $(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')))
fail=$((fail + $(echo "$line" | sed -n 's/.* \([0-9]*\) failed$/\1/p')))

echo "== kill -9 between block writes (sync_spec), $SOAK_KILL_RUNS runs of 20 kills"
for i in $(seq 1 "$SOAK_KILL_RUNS"); do
    out=$(timeout -k 10 300 lua5.4 /usr/bin/busted -o TAP --filter "kill %-9" tests/spec/sync_spec.lua 2>&1)
    if printf '%s\n' "$out" | grep -qE '^ok [0-9]+' && ! printf '%s\n' "$out" | grep -qE '^not ok'; then
        echo "ok kill -9 run $i: $(printf '%s\n' "$out" | grep -o '20 kill -9 rounds.*' | head -1)"
        pass=$((pass + 1))
    else
        echo "not ok kill -9 run $i"
        printf '%s\n' "$out" | tail -30 | sed 's/^/    /'
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
