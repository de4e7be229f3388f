# TAP output for the end-to-end scripts. Source it after $work exists.
#   check NAME COMMAND...   runs COMMAND, prints "ok N - NAME" or "not ok N - NAME"
#                           with the tail of its output as TAP comments
#   expect_in PATTERN FILE  succeeds when FILE matches the extended regex
#   report STATUS NAME [DETAILS]  one result of a test already run (STATUS 0: ok),
#                           DETAILS as a TAP comment
# End the script with: echo "1..$n"; [[ $failed -eq 0 ]]
n=0
failed=0

check() {
  local name="$1"
  shift
  n=$((n + 1))
  if "$@" >"$work/check-$n.log" 2>&1; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    sed 's/^/#   /' "$work/check-$n.log" | tail -15
    failed=$((failed + 1))
  fi
}

expect_in() {
  grep -Eq -e "$1" "$2" || { echo "expected /$1/ in:"; cat "$2"; return 1; }
}

report() {
  n=$((n + 1))
  if [[ "$1" == 0 ]]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
  [[ -n "${3:-}" ]] && echo "# $3"
}
