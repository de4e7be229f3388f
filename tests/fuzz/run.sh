#!/usr/bin/env bash
# Builds fuzz_translate if needed and fuzzes it for a bounded time, starting
# from a temporary copy of tests/fuzz/corpus/ (which is never modified).
#
#   tests/fuzz/run.sh [SECONDS]        default 60
#
# Environment: FUZZ_BUILD_DIR (default <repo>/build-fuzz), CXX (default clang++),
# FUZZ_ARGS (extra libFuzzer flags). Crash inputs are kept in
# $FUZZ_BUILD_DIR/fuzz-artifacts/; reproduce one with
#   $FUZZ_BUILD_DIR/tests/fuzz/fuzz_translate <artifact>
# Prints one result line; exits non-zero when the fuzzer found a crash or
# could not run.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "usage: $0 [seconds > 0]" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$repo/build-fuzz}"
target="$build/tests/fuzz/fuzz_translate"

if [[ ! -f "$build/build.ninja" ]]; then
  CXX="${CXX:-clang++}" meson setup "$build" "$repo" -Dfuzz=true -Dbenchmarks=false -Dtests=false \
    -Dbuildtype=debugoptimized >"$build.setup.log" 2>&1 || {
    echo "fuzz_translate: FAILED to configure $build (see $build.setup.log)" >&2
    exit 2
  }
fi
ninja -C "$build" tests/fuzz/fuzz_translate >/dev/null || {
  echo "fuzz_translate: FAILED to build $target" >&2
  exit 2
}

work="$(mktemp -d "${TMPDIR:-/tmp}/passgate-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
if compgen -G "$here/corpus/*" >/dev/null; then
  cp "$here"/corpus/* "$work/corpus/"
fi
seeds="$(find "$work/corpus" -type f | wc -l)"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

set +e
ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
  "$target" -max_total_time="$seconds" -max_len=2048 -fork=0 -timeout=25 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$work/corpus" >"$work/log" 2>&1
status=$?
# From here on a missing statistic must not end the script early.

execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n1)"
rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n1)"
elapsed="$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$work/log" | grep -Eo '[0-9]+ second' | grep -Eo '[0-9]+' | tail -n1)"
last="$(grep -E '^#[0-9]+' "$work/log" | tail -n1)"
cov="$(grep -Eo 'cov: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || true)"
ft="$(grep -Eo 'ft: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || true)"
corpus_now="$(find "$work/corpus" -type f | wc -l)"

if [[ $status -eq 0 ]]; then
  echo "fuzz_translate: OK ${execs:-?} executions in ${elapsed:-$seconds} s (${rate:-?}/s), cov ${cov:-?} ft ${ft:-?}, corpus ${seeds} -> ${corpus_now} inputs, no crash"
  exit 0
fi

crash="$(grep -Eo "Test unit written to [^ ]+" "$work/log" | tail -n1 | sed 's/Test unit written to //')"
cp "$work/log" "$artifacts/last-failure.log"
summary="$(grep -Em1 'ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|fuzz_translate: ' "$work/log" || true)"
echo "fuzz_translate: CRASH (exit $status) after ${execs:-?} executions: ${summary:-see log}; input ${crash:-?}; log $artifacts/last-failure.log"
exit 1
