#!/usr/bin/env bash
# End-to-end: the lawful-intercept look-up (issue 14) on a live run.
#   - a deterministic pool (RFC 7422) serves subscriber 1, a dynamic pool
#     subscriber 2; the mapping event reaches syslog (rsyslogd) and IPFIX
#     (nfcapd) at start and at a reload;
#   - passgatectl lookup names the holder of a public port live, for both
#     pools, and a subscriber's ranges;
#   - passgate-lookup, with the gateway stopped, answers from the
#     configuration (deterministic) and from the logs the run wrote: the
#     right subscriber inside its block's life, nobody before the block was
#     allocated and after it was released, "not covered" outside the logs.
# Subscriber 2's block holds one ICMP echo mapping only, so with
# timeouts.icmp 60 and port_reuse_hold 0 it is released about a minute in.
# Prints TAP; exits non-zero if any check failed.
#   tests/e2e/lookup_e2e.sh PASSGATE PASSGATECTL PASSGATE_LOOKUP
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
LOOKUP="$(realpath "${3:?usage: $0 PASSGATE PASSGATECTL PASSGATE_LOOKUP}")"
e2e_require_root
e2e_require nfcapd nfdump rsyslogd
e2e_start lookup
chmod 755 "$work"
collectors=()
e2e_stop_extras() {
  local p
  for p in "${collectors[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
}
IPFIX_PORT=4741
SYSLOG_PORT=5516
cfg="$work/passgate.yaml"
DET_PUBLIC=198.51.100.20

# Subscriber 1 (100.64.0.11) in the deterministic pool, with 14 more
# subscriber addresses in 100.64.0.16/28: N = 15 over 2 addresses, ratio 8,
# 8064 ports each; subscriber 2 (100.64.0.12) in the dynamic pool.
python3 - "$repo/conf/demo.yaml" "$cfg" <<PY
import sys
text = open(sys.argv[1]).read()
text = text.replace("""    - name: demo
      subscribers: [100.64.0.0/24]""", """    - name: det
      mode: deterministic
      subscribers: [100.64.0.11/32, 100.64.0.16/28]
      public: [$DET_PUBLIC-198.51.100.21]
    - name: demo
      subscribers: [100.64.0.12/30]""")
text = text.replace("  static:\n", "  timeouts: {icmp: 60, port_reuse_hold: 0}\n  static:\n")
text += """control:
  log_level: info
  nat_events:
    ipfix: {collector: 127.0.0.1:$IPFIX_PORT, observation_domain: 3, template_refresh_s: 60}
    syslog: {server: 127.0.0.1:$SYSLOG_PORT}
"""
open(sys.argv[2], "w").write(text)
PY

topo_up
mkdir -p "$work/flows" "$work/rsyslog"
ip netns exec pg-gw nfcapd -b 127.0.0.1 -p "$IPFIX_PORT" -w "$work/flows" -t 3600 >"$work/nfcapd.log" 2>&1 &
collectors+=($!)
# The whole RFC 5424 line, as passgate-lookup reads it (README).
cat >"$work/rsyslog.conf" <<EOF
global(workDirectory="$work/rsyslog" net.enableDNS="off")
module(load="imudp")
ruleset(name="nat") { action(type="omfile" file="$work/nat.log" template="RSYSLOG_SyslogProtocol23Format") }
input(type="imudp" address="127.0.0.1" port="$SYSLOG_PORT" ruleset="nat")
EOF
ip netns exec pg-gw rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslogd.pid" >"$work/rsyslogd.log" 2>&1 &
collectors+=($!)
sleep 1

utc_now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }
t_start=$(utc_now)
start_passgate "$cfg" "$work/passgate.log" || { echo "1..0 # passgate did not start"; exit 1; }
pg_ns pg-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
sleep 1.2
t_before=$(utc_now)
sleep 1.2

# Subscriber 2: one ping opens its block. Subscriber 1: a UDP flow.
pg_ns pg-sub2 ping -c 2 -i 0.2 -W 1 "$PG_SERVER" >"$work/ping" 2>&1
pg_ns pg-sub1 $TOOL udp-ask "$PG_SERVER" 9000 40001 >"$work/ask" 2>&1
det_endpoint=$(cut -d' ' -f2 "$work/ask")
"$CTL" subscriber "$PG_SUB2" >"$work/sub2" 2>&1
block=$(sed -nE 's/^  ([0-9]+)-([0-9]+)$/\1 \2/p' "$work/sub2" | head -1)
block_public=$(sed -nE 's/^subscriber .* -> public address (.*)$/\1/p' "$work/sub2")
block_port=$(( ${block% *} + 7 ))
sleep 1.2
t_during=$(utc_now)

t_traffic() {
  cat "$work/ping" "$work/ask" "$work/sub2"
  grep -q " 0% packet loss" "$work/ping" && [[ "$det_endpoint" == $DET_PUBLIC:* ]] && [[ -n "$block" && -n "$block_public" ]]
}
check "traffic: subscriber 1 leaves from its deterministic address, subscriber 2 holds a dynamic block" t_traffic

t_live_port() {
  "$CTL" lookup "$det_endpoint" | tee "$work/live-det" &&
    expect_in "^${det_endpoint//./\\.} -> subscriber ${PG_SUB1//./\\.} \(port block, pool det deterministic, range " \
      "$work/live-det" &&
    expect_in "mapping udp ${PG_SUB1//./\\.}:40001 -> ${det_endpoint//./\\.} dynamic sessions 1" "$work/live-det" &&
    "$CTL" lookup "$block_public:$block_port" | tee "$work/live-dyn" &&
    expect_in "-> subscriber ${PG_SUB2//./\\.} \(port block, pool demo dynamic, range ${block% *}-${block#* }\)" \
      "$work/live-dyn"
}
check "passgatectl lookup PUBLIC:PORT: the block's holder, live, in both pools" t_live_port

# 100.64.0.17 has no state: the deterministic mapping still names it.
t_live_idle() {
  local want
  want=$("$LOOKUP" --config "$cfg" 100.64.0.17 --json | python3 -c \
    'import json,sys; d=json.load(sys.stdin); print(d["public_address"], d["first_port"])')
  "$CTL" lookup "${want% *}:$(( ${want#* } + 3 ))" | tee "$work/live-idle" &&
    expect_in "-> subscriber 100\.64\.0\.17 \(deterministic mapping \(no state now\), pool det" "$work/live-idle" &&
    "$CTL" lookup "$PG_SUB1" | tee "$work/live-sub" &&
    expect_in "deterministic mapping \(pool det\): $DET_PUBLIC ports 1024-9087" "$work/live-sub"
}
check "passgatectl lookup: a deterministic subscriber without state, and a subscriber's range" t_live_idle

# Wait for subscriber 2's block to go (ICMP 60 s idle, no hold).
for _ in $(seq 1 120); do
  "$CTL" subscriber "$PG_SUB2" 2>/dev/null | grep -q "no NAT state" && break
  sleep 1
done
sleep 1.2
t_after=$(utc_now)
sleep 1.2
# A reload logs the mapping again, so that the logs reach past t_after.
"$CTL" reload >"$work/reload" 2>&1
sleep 1.5
stop_passgate
sleep 0.5
for p in "${collectors[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
wait "${collectors[@]}" 2>/dev/null
collectors=()

t_released() {
  cat "$work/reload"
  grep -E "NAT-BLOCK-RELEASE .*inside=\"${PG_SUB2//./\\.}\"" "$work/nat.log" &&
    [[ $(grep -c "NAT-DET-MAP" "$work/nat.log") -eq 2 ]] && ! grep -q "NAT-BLOCK-ALLOC .*inside=\"${PG_SUB1//./\\.}\"" "$work/nat.log"
}
check "syslog: the dynamic block released; the mapping logged at start and at the reload; no block events for the deterministic pool" t_released

# --- offline, from what the run wrote ---
ask() {  # ask NAME EXPECTED_EXIT ARGS...: runs passgate-lookup, keeps its answer in $work/NAME
  local name="$1" want="$2" rc
  shift 2
  "$LOOKUP" "$@" >"$work/$name" 2>&1
  rc=$?
  cat "$work/$name"
  [[ $rc -eq $want ]] || { echo "exit status $rc, expected $want"; return 1; }
}
t_config() {
  ask cfg 0 --config "$cfg" "$det_endpoint" &&
    expect_in "^${det_endpoint//./\\.}: subscriber ${PG_SUB1//./\\.} \(deterministic pool det, range 1024-9087" "$work/cfg" &&
    ask cfg-dyn 1 --config "$cfg" "$block_public:$block_port" && expect_in "dynamic pool demo" "$work/cfg-dyn"
}
check "passgate-lookup --config: the deterministic subscriber; a dynamic pool's port needs the logs" t_config

t_syslog() {
  ask during 0 --syslog "$work/nat.log" --at "$t_during" "$block_public:$block_port" &&
    expect_in ": subscriber ${PG_SUB2//./\\.} \(${PG_SUB2//./\\.} held $block_public ports ${block% *}-${block#* } from " \
      "$work/during" &&
    ask before 1 --syslog "$work/nat.log" --at "$t_before" "$block_public:$block_port" &&
    expect_in "no subscriber held a block covering it" "$work/before" &&
    ask after 1 --syslog "$work/nat.log" --at "$t_after" "$block_public:$block_port" &&
    expect_in "no subscriber held a block covering it" "$work/after" &&
    ask outside 1 --syslog "$work/nat.log" --at "@1000000000" "$block_public:$block_port" &&
    expect_in "the logs do not cover that time" "$work/outside" &&
    ask det 0 --syslog "$work/nat.log" --at "$t_during" "$det_endpoint" &&
    expect_in ": subscriber ${PG_SUB1//./\\.} \(deterministic pool det, range 1024-9087, by the RFC 7422 mapping logged at" \
      "$work/det"
}
check "passgate-lookup --syslog: the holder during its block's life, nobody before and after, not covered outside the logs, the logged mapping" t_syslog

t_ipfix() {
  ls "$work/flows"
  ask ipfix-during 1 --ipfix "$work/flows" --at "$t_during" --json "$block_public:$block_port" &&
    python3 - "$work/ipfix-during" "$PG_SUB2" <<'PY' &&
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "candidates", d
assert [h["subscriber"] for h in d["holders"]] == [sys.argv[2]], d
assert d["holders"][0]["from"] and d["holders"][0]["until"], d
print("nfdump records: the one subscriber with a block on the address then:", d["holders"][0])
PY
    ask ipfix-after 1 --ipfix "$work/flows" --at "$t_after" "$block_public:$block_port" &&
    expect_in "no subscriber held a block" "$work/ipfix-after" &&
    ask ipfix-before 1 --ipfix "$work/flows" --at "$t_before" "$block_public:$block_port" &&
    expect_in "no subscriber held a block" "$work/ipfix-before"
}
# (nfcapd keeps the mapping records too, without their text: they date the
# span the logs cover, so before and after the block the answer is "nobody".)
check "passgate-lookup --ipfix (nfcapd files through nfdump): the block's holder as the only candidate during its life, nobody before and after" t_ipfix

echo "# times: start $t_start before $t_before during $t_during after $t_after"
echo "1..$n"
[[ $failed -eq 0 ]]
