#!/usr/bin/env bash
# The shipped BIRD 2 configurations (conf/bird/) parse with Debian's BIRD
# (bird -p: parse only, nothing started), and a broken copy is refused, so a
# typo in them fails here rather than on an operator's box (issue 15).
# Prints TAP.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bird="$(command -v bird || echo /usr/sbin/bird)"
[[ -x "$bird" ]] || { echo "1..0 # SKIP bird not installed (scripts/install-deps.sh)"; exit 77; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
n=0
failed=0
result() {
  n=$((n + 1))
  if [[ "$1" == 0 ]]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
for f in "$repo"/conf/bird/*.conf; do
  "$bird" -p -c "$f" >"$work/out" 2>&1
  rc=$?
  [[ $rc -eq 0 ]] || sed 's/^/#   /' "$work/out"
  result "$rc" "bird -p accepts conf/bird/$(basename "$f")"
done
# The check can fail: a protocol with an unknown option is refused.
sed 's/connect retry time 5;/connect retry tim 5;/' "$repo/conf/bird/passgate.conf" >"$work/broken.conf"
if "$bird" -p -c "$work/broken.conf" >"$work/out" 2>&1; then rc=1; else rc=0; fi
grep -q "syntax error" "$work/out" || rc=1
result "$rc" "bird -p refuses a broken copy (the check can fail)"
echo "1..$n"
[[ $failed -eq 0 ]]
