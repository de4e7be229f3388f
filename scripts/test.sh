#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   1. installs what is missing (scripts/install-deps.sh),
#   2. builds the release tree and runs every meson test (unit, integration,
#      e2e, ...),
#   3. builds the unit and integration tests with AddressSanitizer +
#      UndefinedBehaviorSanitizer and runs them,
#   4. builds the two libFuzzer targets with clang and fuzzes them for
#      FUZZ_SECONDS together (default 120, split evenly: parse+translate, and
#      operation sequences with Engine::check_invariants()) from their
#      committed corpora.
# Ends with one line "N passed, N failed" (test cases, not steps), and exits
# non-zero when anything failed or could not run.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
fuzz_seconds="${FUZZ_SECONDS:-120}"
logs="$repo/build-logs"
mkdir -p "$logs"

passed=0
failed=0
note_fail() { echo "FAILED: $*"; failed=$((failed + 1)); }

if ! bash scripts/install-deps.sh; then
  note_fail "installing dependencies"
  echo "$passed passed, $failed failed"
  exit 1
fi

# Counts the test cases of one `meson test` run: gtest cases from their JSON
# reports, every other test as one case from meson's own log.
count_results() {
  local build="$1" gtest_dir="$2"
  python3 - "$build/meson-logs/testlog.json" "$gtest_dir" <<'PY'
import json, sys, glob, os
log, gdir = sys.argv[1], sys.argv[2]
p = f = 0
gtest_names = set()
for path in glob.glob(os.path.join(gdir, "*.json")):
    with open(path) as fh:
        report = json.load(fh)
    gtest_names.add(os.path.basename(path)[:-5])
    for suite in report.get("testsuites", []):
        for case in suite.get("testsuite", []):
            if case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                continue
            if case.get("failures"):
                f += 1
            else:
                p += 1
if os.path.exists(log):
    with open(log) as fh:
        for line in fh:
            t = json.loads(line)
            out = t.get("stdout", "") or ""
            tap = [l for l in out.splitlines() if l.startswith("ok ") or l.startswith("not ok ")]
            if tap:
                # A TAP test (the end-to-end suite): count its checks.
                p += sum(1 for l in tap if l.startswith("ok ") and "# SKIP" not in l)
                f += sum(1 for l in tap if l.startswith("not ok "))
                if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and not any(l.startswith("not ok ") for l in tap):
                    f += 1
                continue
            if "[==========]" in out and gtest_names:
                # A gtest binary that crashed mid-run reports fewer cases than
                # it has; count the crash itself as a failure.
                if t["result"] not in ("OK", "EXPECTEDFAIL"):
                    f += 1
                continue
            if t["result"] in ("OK", "EXPECTEDFAIL"):
                p += 1
            elif t["result"] != "SKIP":
                f += 1
print(p, f)
PY
}

# run_suite NAME BUILD_DIR MESON_TEST_ARGS -- MESON_SETUP_ARGS...
run_suite() {
  local name="$1" build="$2"
  shift 2
  local test_args=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do test_args+=("$1"); shift; done
  shift
  echo "== $name"
  if [[ ! -f "$build/build.ninja" ]]; then
    if ! meson setup "$build" "$@" >"$logs/$name-setup.log" 2>&1; then
      note_fail "$name: meson setup (see $logs/$name-setup.log)"
      tail -20 "$logs/$name-setup.log"
      return
    fi
  fi
  if ! ninja -C "$build" >"$logs/$name-build.log" 2>&1; then
    note_fail "$name: build (see $logs/$name-build.log)"
    grep -E "error|FAILED" "$logs/$name-build.log" | head -20
    return
  fi
  local gtest_dir
  gtest_dir="$(cd "$build" && pwd)/gtest-reports"
  rm -rf "$gtest_dir" && mkdir -p "$gtest_dir"
  GTEST_OUTPUT="json:$gtest_dir/" meson test -C "$build" --print-errorlogs --num-processes 2 "${test_args[@]}" \
    >"$logs/$name-test.log" 2>&1
  local p f
  read -r p f < <(count_results "$build" "$gtest_dir")
  echo "$name: $p passed, $f failed"
  if [[ "$f" -gt 0 || "$p" -eq 0 ]]; then
    tail -40 "$logs/$name-test.log"
    [[ "$p" -eq 0 && "$f" -eq 0 ]] && f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
}

run_suite release build -- -Dbuildtype=release

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# The unit and integration suites only: DPDK's own memory handling is not
# built for ASan.
run_suite sanitizers build-asan --suite unit --suite integration -- -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
  -Dbenchmarks=false

# Both libFuzzer targets (fuzz_translate, fuzz_ops), the time split between
# them; run.sh prints one result line per target, each counted as one case.
echo "== fuzz ($fuzz_seconds s)"
FUZZ_BUILD_DIR="$repo/build-fuzz" bash tests/fuzz/run.sh "$fuzz_seconds" >"$logs/fuzz.log" 2>&1
fuzz_status=$?
fuzz_ok="$(grep -cE '^fuzz_[a-z_]+: OK ' "$logs/fuzz.log")"
fuzz_bad="$(grep -cE '^fuzz_[a-z_]+: (CRASH|FAILED)' "$logs/fuzz.log")"
grep -E '^fuzz_[a-z_]+: ' "$logs/fuzz.log"
passed=$((passed + fuzz_ok))
if [[ $fuzz_status -ne 0 || $fuzz_ok -lt 2 ]]; then
  [[ $fuzz_bad -eq 0 ]] && fuzz_bad=1
  tail -30 "$logs/fuzz.log"
  failed=$((failed + fuzz_bad))
  echo "FAILED: fuzz run (see $logs/fuzz.log)"
fi

echo "$passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
