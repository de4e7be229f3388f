#!/usr/bin/env bash
# Builds the libFuzzer targets if needed and fuzzes each for a bounded time,
# starting from a temporary copy of its committed corpus (never modified):
#   fuzz_translate  one packet through parse + a long-lived engine   tests/fuzz/corpus/
#   fuzz_ops        operation sequences on one fresh small engine     tests/fuzz/corpus-ops/
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]   default 60 s, both targets, the
#                                             time split evenly between them
#
# Environment: FUZZ_BUILD_DIR (default <repo>/build-fuzz), CXX (default clang++),
# FUZZ_ARGS (extra libFuzzer flags, or directories of extra seeds, read only:
# new inputs go to the temporary corpus), FUZZ_OPS_TRACE (see fuzz_ops.cpp). Crash inputs are kept in $FUZZ_BUILD_DIR/fuzz-artifacts/;
# reproduce one with
#   $FUZZ_BUILD_DIR/tests/fuzz/<target> <artifact>
# Prints one result line per target; exits non-zero when a fuzzer found a
# crash or could not run.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "usage: $0 [seconds > 0] [fuzz_translate|fuzz_ops ...]" >&2
  exit 2
fi
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(fuzz_translate fuzz_ops)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$repo/build-fuzz}"

corpus_of() {
  case "$1" in
    fuzz_translate) echo "$here/corpus" ;;
    fuzz_ops) echo "$here/corpus-ops" ;;
    *) return 1 ;;
  esac
}
for t in "${targets[@]}"; do
  corpus_of "$t" >/dev/null || { echo "unknown target '$t' (fuzz_translate, fuzz_ops)" >&2; exit 2; }
done

if [[ ! -f "$build/build.ninja" ]]; then
  CXX="${CXX:-clang++}" meson setup "$build" "$repo" -Dfuzz=true -Dbenchmarks=false -Dtests=false \
    -Dbuildtype=debugoptimized >"$build.setup.log" 2>&1 || {
    for t in "${targets[@]}"; do echo "$t: FAILED to configure $build (see $build.setup.log)"; done
    exit 2
  }
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=("tests/fuzz/$t"); done
ninja -C "$build" "${build_targets[@]}" >"$build.fuzz-build.log" 2>&1 || {
  for t in "${targets[@]}"; do echo "$t: FAILED to build (see $build.fuzz-build.log)"; done
  exit 2
}

each=$((seconds / ${#targets[@]}))
[[ $each -lt 1 ]] && each=1
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
work="$(mktemp -d "${TMPDIR:-/tmp}/passgate-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# run_target NAME SECONDS: one result line; returns non-zero on a crash.
run_target() {
  local name="$1" secs="$2"
  local target="$build/tests/fuzz/$name" corpus="$work/$name-corpus" log="$work/$name.log"
  local src
  src="$(corpus_of "$name")"
  mkdir -p "$corpus"
  if compgen -G "$src/*" >/dev/null; then
    cp "$src"/* "$corpus/"
  fi
  local seeds
  seeds="$(find "$corpus" -type f | wc -l)"

  local status
  set +e
  ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$target" -max_total_time="$secs" -max_len=2048 -fork=0 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$name-" "$corpus" ${FUZZ_ARGS:-} >"$log" 2>&1
  status=$?
  set -e
  # From here on a missing statistic must not end the script early.

  local execs rate elapsed last cov ft corpus_now
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
  elapsed="$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -Eo '[0-9]+ second' | grep -Eo '[0-9]+' | tail -n1 || true)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)"
  cov="$(grep -Eo 'cov: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || true)"
  ft="$(grep -Eo 'ft: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || true)"
  corpus_now="$(find "$corpus" -type f | wc -l)"

  if [[ $status -eq 0 ]]; then
    echo "$name: OK ${execs:-?} executions in ${elapsed:-$secs} s (${rate:-?}/s), cov ${cov:-?} ft ${ft:-?}, corpus ${seeds} -> ${corpus_now} inputs, no crash"
    return 0
  fi
  local crash summary
  crash="$(grep -Eo "Test unit written to [^ ]+" "$log" | tail -n1 | sed 's/Test unit written to //' || true)"
  cp "$log" "$artifacts/$name-last-failure.log"
  summary="$(grep -Em1 'ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|INVARIANT BROKEN|fuzz_translate: ' "$log" || true)"
  echo "$name: CRASH (exit $status) after ${execs:-?} executions: ${summary:-see log}; input ${crash:-?}; log $artifacts/$name-last-failure.log"
  return 1
}

failed=0
for t in "${targets[@]}"; do
  run_target "$t" "$each" || failed=1
done
exit "$failed"
