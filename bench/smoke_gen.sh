#!/usr/bin/env bash
# Smoke test of the performance harness, short enough for CI (< 60 s):
# passgate on two memif ports, passgate-gen at a low fixed rate in both
# directions with UDP, TCP and ICMP flows. Checks that nothing is lost at
# that rate, that the answers crossed the translation (the outside saw only
# pool addresses, every answer came back to its own subscriber and port),
# that the JSON carries the fields the harness reads, and that passgate
# stopped with every buffer back. A benchmark smoke test, not a benchmark:
# no throughput figure is asserted.
#
# Prints TAP.   bench/smoke_gen.sh PASSGATE_BINARY PASSGATE_GEN_BINARY
#   SMOKE_MODE=forward runs passgate without NAT: the translation checks must
#   then fail (a self-test of this script).
set -uo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 PASSGATE PASSGATE_GEN" >&2; exit 2; }
PASSGATE="$(realpath "$1")"
GEN="$(realpath "$2")"
[[ $(id -u) -eq 0 ]] || { echo "1..0 # SKIP needs root (DPDK memif)"; exit 77; }
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

work="$(mktemp -d /tmp/pb-smoke.XXXXXX)"
pg_pid=
cleanup() {
  if [[ -n "$pg_pid" ]] && kill -0 "$pg_pid" 2>/dev/null; then
    kill -TERM "$pg_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pg_pid" 2>/dev/null
  fi
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

# The TAP helpers of the end-to-end tests (check, expect_in).
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/tap.sh"

# Unique per run so that two CI jobs on one host never share a socket or a
# DPDK runtime directory.
tag="pb-smoke-$$"
eal='"--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--log-level", "lib.eal:error", "--log-level", "pmd.net.memif:error"'
cat >"$work/passgate.yaml" <<EOF
dataplane:
  eal: [$eal, "--file-prefix", "$tag-dut"]
  mode: ${SMOKE_MODE:-nat}
  mbufs: 8191
  neighbour: {table_size: 256, queue: 4}
ports:
  - {name: inside, device: "net_memif0,role=server,socket=$work/in.sock", role: inside, address: 10.0.0.1/24,
     routes: [{prefix: 100.64.0.0/10, via: 10.0.0.2}]}
  - {name: outside, device: "net_memif1,role=server,socket=$work/out.sock", role: outside, address: 198.18.0.1/24,
     gateway: 198.18.0.2}
nat:
  max_sessions: 65536
  max_subscribers: 1024
  random_seed: 2544
  pools:
    - {name: smoke, subscribers: [100.64.0.0/10], public: [198.18.4.0/30], block_size: 256}
EOF

start_passgate() {
  "$PASSGATE" --config "$work/passgate.yaml" -- -l 0,1 >"$work/passgate.log" 2>&1 &
  pg_pid=$!
  for _ in $(seq 1 100); do
    kill -0 "$pg_pid" 2>/dev/null || { cat "$work/passgate.log"; return 1; }
    grep -q "running with" "$work/passgate.log" && return 0
    sleep 0.1
  done
  cat "$work/passgate.log"
  return 1
}
check "passgate starts on two memif ports" start_passgate

run_gen() {
  # 16 subscribers x 4 flows, 20,000 packets/s for 3 s: far below what any
  # machine forwards, so any loss is a bug, not a limit.
  timeout 45 "$GEN" --inside "net_memif0,role=client,socket=$work/in.sock" \
    --outside "net_memif1,role=client,socket=$work/out.sock" \
    --subscribers 16 --flows 4 --mix udp:60,tcp:20,icmp:20 --mode fixed --rate 20000 --duration 3 \
    --drain 0.5 --label smoke --json "$work/gen.json" \
    -- -l 0 --no-huge -m 256 --no-pci --no-shconf --file-prefix "$tag-gen" \
    --log-level lib.eal:error --log-level pmd.net.memif:error >"$work/gen.log" 2>&1
  local rc=$?
  cat "$work/gen.log"
  [[ $rc -eq 0 && -s "$work/gen.json" ]]
}
check "passgate-gen runs a 3 s trial and writes JSON" run_gen

jq_check() {  # jq_check PYTHON_EXPRESSION over d (the JSON document): must be true
  "$PY" - "$work/gen.json" "$1" <<'PY'
import json, sys, ipaddress
d = json.load(open(sys.argv[1]))
t = d["result"]["trial"]
out, inb = t["outbound"], t["inbound"]
ok = eval(sys.argv[2])
print(json.dumps({"outbound": {k: out[k] for k in ("sent", "received", "lost", "untranslated", "tx_refused")},
                  "inbound": {k: inb[k] for k in ("sent", "received", "lost", "mismatched")},
                  "public_addresses_seen": d["public_addresses_seen"], "warmup": d["warmup"]}))
sys.exit(0 if ok else 1)
PY
}
check "JSON has the fields the harness reads" jq_check \
  'all(k in d for k in ("config","warmup","result","trials","public_addresses_seen")) and all(k in x for x in (out, inb) for k in ("sent","received","lost","latency_us")) and all(k in out["latency_us"] for k in ("p50","p99","p999","max"))'
check "warm-up opened and answered every flow" jq_check 'd["warmup"]["answered"] == d["warmup"]["flows"] == 64'
# The generator paces strictly (never a burst to catch up), so on a busy
# machine it may offer less than asked: a quarter is enough here.
check "inside to outside: packets sent and all received" jq_check 'out["sent"] >= 15000 and out["received"] == out["sent"]'
check "outside to inside: every answer sent and received" jq_check 'inb["sent"] == out["received"] and inb["received"] == inb["sent"]'
check "the outside saw only pool addresses (198.18.4.0/30), never a subscriber" jq_check \
  'out["untranslated"] == 0 and len(d["public_addresses_seen"]) > 0 and all(ipaddress.ip_address(a) in ipaddress.ip_network("198.18.4.0/30") for a in d["public_addresses_seen"])'
check "every answer was translated back to its own subscriber and port" jq_check 'inb["mismatched"] == 0'
check "latency percentiles measured both ways" jq_check \
  'out["latency_us"]["samples"] == out["received"] and inb["latency_us"]["samples"] == inb["received"] and 0 < out["latency_us"]["p50"] <= out["latency_us"]["p99"]'

stop_passgate() {
  kill -TERM "$pg_pid"
  for _ in $(seq 1 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$pg_pid" 2>/dev/null || return 1
  wait "$pg_pid"
  local rc=$?
  pg_pid=
  grep -E '^(port|mbufs)' "$work/passgate.log"
  [[ $rc -eq 0 ]] && grep -Eq '^mbufs: ([0-9]+) of \1 free$' "$work/passgate.log"
}
check "passgate stops cleanly with every buffer back" stop_passgate

echo "1..$n"
[[ $failed -eq 0 ]]
