#!/usr/bin/env bash
# End-to-end: passgate's control core with its real clients.
#   - hot reload: continuous UDP and TCP through the gateway across ten
#     reloads (SIGHUP and passgatectl), zero loss; a broken file and a
#     restart-only change are refused with file:line:column and the running
#     policy stays;
#   - passgatectl: stats, pools, a subscriber's blocks and sessions, who holds
#     a public port, the configuration version, --json; remote endpoints only
#     with --destinations;
#   - control-plane defaults: the telemetry socket's directory 0700 and socket
#     0600, Prometheus on loopback for a bare port, --prometheus refused when
#     malformed;
#   - NAT event export: IPFIX to nfcapd (read back with nfdump; port ranges
#     checked with tshark's IPFIX dissector, which nfdump 1.7.1 does not
#     decode), RFC 5424 syslog to rsyslogd;
#   - Prometheus pool gauges and runtime stages, checked by promtool;
#   - passgatectl runtime: clear, then the stages of one exchange.
# Prints TAP; exits non-zero if any check failed.
#   tests/e2e/control_e2e.sh PASSGATE_BINARY PASSGATECTL_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
e2e_require_root
e2e_start control
chmod 755 "$work"
collectors=()
e2e_stop_extras() {
  local p
  for p in "${collectors[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
}

IPFIX_PORT=4739
SYSLOG_PORT=5514
cfg="$work/passgate.yaml"

# Policy A: the demo configuration with the control section.
control_section() {
  cat <<EOF
control:
  prometheus: 9470
  log_level: info
  nat_events:
    sessions: false
    ipfix: {collector: 127.0.0.1:$IPFIX_PORT, observation_domain: 7, template_refresh_s: 60}
    syslog: {server: 127.0.0.1:$SYSLOG_PORT, facility: local3}
EOF
}
{ cat "$repo/conf/demo.yaml"; control_section; } >"$work/policy-a.yaml"
# Policy B: another pool, another static mapping, other timeouts.
python3 - "$work/policy-a.yaml" "$work/policy-b.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
text = text.replace("  static:\n", """    - name: business
      subscribers: [100.64.9.0/24]
      public: [198.51.100.40-198.51.100.41]
      ports: 1024-65535
      block_size: 512
  timeouts: {udp: 600, tcp_transitory: 300}
  static:
    - {protocol: udp, inside: 100.64.0.12:5353, public: 198.51.100.31:53}
""")
open(sys.argv[2], "w").write(text)
PY
# Broken: a YAML syntax error on a known line. Restart-only: another MTU.
{ cat "$work/policy-a.yaml"; printf 'extra: [unclosed\n'; } >"$work/policy-broken.yaml"
broken_line=$(($(wc -l <"$work/policy-a.yaml") + 2))
sed 's|    gateway: 198.51.100.254|    gateway: 198.51.100.254\n    mtu: 1400|' "$work/policy-a.yaml" >"$work/policy-mtu.yaml"
cp "$work/policy-a.yaml" "$cfg"

topo_up
# Collectors on the gateway's management side (its loopback).
mkdir -p "$work/flows" "$work/rsyslog"
ip netns exec pg-gw nfcapd -b 127.0.0.1 -p "$IPFIX_PORT" -w "$work/flows" -P "$work/nfcapd.pid" -t 3600 \
  >"$work/nfcapd.log" 2>&1 &
collectors+=($!)
cat >"$work/rsyslog.conf" <<EOF
global(workDirectory="$work/rsyslog" net.enableDNS="off")
module(load="imudp")
template(name="fields" type="string" string="%protocol-version%|%syslogfacility-text%|%app-name%|%msgid%|%structured-data%|%msg%\n")
ruleset(name="nat") { action(type="omfile" file="$work/syslog.log" template="fields") }
input(type="imudp" address="127.0.0.1" port="$SYSLOG_PORT" ruleset="nat")
EOF
ip netns exec pg-gw rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslogd.pid" >"$work/rsyslogd.log" 2>&1 &
collectors+=($!)
ip netns exec pg-gw tshark -q -i lo -w "$work/ipfix.pcapng" -f "udp port $IPFIX_PORT" >/dev/null 2>&1 &
collectors+=($!)
sleep 1

start_passgate "$cfg" "$work/passgate.log" || { echo "1..0 # passgate did not start"; exit 1; }
pg_ns pg-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
pg_ns pg-net $TOOL tcp-mirror 9002 >/dev/null 2>&1 &
sleep 0.5

t_version() {
  "$CTL" config | tee "$work/config-1"
  expect_in "^generation 1$" "$work/config-1" && expect_in "^digest [0-9a-f]{16}$" "$work/config-1"
}
check "passgatectl config: generation 1 and the file's digest" t_version

# Traffic for the look-ups: subscriber 1 ($PG_SUB1) talks UDP from 40001.
pg_ns pg-sub1 $TOOL udp-ask "$PG_SERVER" 9000 40001 >"$work/ask" 2>&1
public_endpoint=$(cut -d' ' -f2 "$work/ask")
t_subscriber() {
  "$CTL" subscriber $PG_SUB1 | tee "$work/sub"
  expect_in "^subscriber ${PG_SUB1//./\\.} -> public address ${public_endpoint%:*}$" "$work/sub" &&
    expect_in "^  [0-9]+-[0-9]+$" "$work/sub" &&
    expect_in "^  udp ${PG_SUB1//./\\.}:40001 -> $public_endpoint none idle" "$work/sub"
}
check "passgatectl subscriber: public address, port block and the session" t_subscriber
t_destinations_hidden() {
  "$CTL" --json subscriber $PG_SUB1 >"$work/sub.json" && cat "$work/sub.json" &&
    "$CTL" public udp "${public_endpoint%:*}" "${public_endpoint#*:}" >"$work/public-plain" &&
    cat "$work/public-plain" &&
    ! grep -q "$PG_SERVER" "$work/sub" "$work/sub.json" "$work/public-plain" &&
    expect_in "remote endpoints not shown; --destinations shows them" "$work/sub" &&
    ! "$CTL" --destinations stats >/dev/null 2>"$work/dest-stats" && cat "$work/dest-stats" &&
    expect_in "destinations applies to subscriber, public and lookup only" "$work/dest-stats"
}
check "without --destinations no answer names the subscriber's remote endpoint (RFC 6888 REQ-12)" t_destinations_hidden
t_destinations_shown() {
  "$CTL" --destinations subscriber $PG_SUB1 | tee "$work/sub-dest"
  expect_in "udp ${PG_SUB1//./\\.}:40001 -> $public_endpoint remote $PG_SERVER:9000" "$work/sub-dest"
}
check "passgatectl --destinations subscriber: the session with its remote endpoint" t_destinations_shown
t_public() {
  "$CTL" --destinations public udp "${public_endpoint%:*}" "${public_endpoint#*:}" | tee "$work/public"
  expect_in "^dynamic udp mapping: inside ${PG_SUB1//./\\.}:40001 <-> public $public_endpoint, 1 session" "$work/public" &&
    expect_in "remote $PG_SERVER:9000" "$work/public"
}
check "passgatectl public: the public address and port lead back to the subscriber" t_public
t_socket_mode() {
  local dir=/var/run/dpdk/rte
  stat -c '%a %U %n' "$dir" "$dir"/* | tee "$work/modes"
  # %a is octal digits: the last two (group, other) must be 00 for every entry.
  expect_in "^700 root $dir$" "$work/modes" && expect_in "^600 root $dir/dpdk_telemetry.v2$" "$work/modes" &&
    [[ -z $(awk '$1 % 100 != 0' "$work/modes") ]] &&
    expect_in "telemetry socket directory $dir 0700" "$work/passgate.log"
}
check "telemetry socket: directory 0700, socket 0600, root's only (no telemetry_group)" t_socket_mode
t_prometheus_loopback() {
  pg_ns pg-gw ss -Hltn "sport = :9470" | tee "$work/listen"
  [[ $(wc -l <"$work/listen") -eq 1 ]] && expect_in "127\.0\.0\.1:9470 " "$work/listen"
}
check "Prometheus for a bare port (prometheus: 9470) listens on 127.0.0.1 only" t_prometheus_loopback
t_prometheus_flag_checked() {
  ! "$PASSGATE" --check --config "$cfg" --prometheus 9469r >"$work/flag" 2>&1
  local refused=$?
  cat "$work/flag"
  [[ $refused -eq 0 ]] && expect_in "^passgate: --prometheus: expected PORT .* got '9469r'" "$work/flag" &&
    "$PASSGATE" --check --config "$cfg" --prometheus 9469 >/dev/null
}
check "--prometheus is read like control.prometheus: 9469r refused before anything starts" t_prometheus_flag_checked
t_pools() {
  "$CTL" pools | tee "$work/pools"
  expect_in "^demo +active +4 +0 +1008 +[1-9]" "$work/pools"
}
check "passgatectl pools: addresses, blocks (4 x 252) and blocks in use" t_pools
t_health_unconfigured() {
  "$CTL" health | tee "$work/health" && expect_in "^not configured$" "$work/health" &&
    ! "$CTL" drain 2>"$work/drain" && cat "$work/drain" && expect_in "no health: section" "$work/drain" &&
    pg_ns pg-gw curl -sf "http://127.0.0.1:9470/metrics" >"$work/metrics-health" &&
    grep -q '^passgate_port_receive_packets_total' "$work/metrics-health" && ! grep -q passgate_health_ "$work/metrics-health"
}
check "passgatectl health without health: says so, drain is refused, no passgate_health_ metrics" t_health_unconfigured
t_json() {
  "$CTL" --json stats >"$work/stats.json" && python3 -c '
import json,sys
d = json.load(open(sys.argv[1]))["/passgate/nat"]
assert d["sessions"] >= 1 and d["port_blocks"] >= 1, d
print("sessions", d["sessions"])' "$work/stats.json"
}
check "passgatectl --json stats is JSON with live values" t_json
# Runtime accounting (issue 17.1): cleared, one exchange, then the table
# counts it: packets in, translated, out, and the idle polls around them.
t_runtime() {
  "$CTL" runtime clear | tee "$work/runtime-clear" &&
    ! grep -qE "^  (receive|transmit) " "$work/runtime-clear" &&
    pg_ns pg-sub1 $TOOL udp-ask "$PG_SERVER" 9000 40002 >/dev/null &&
    "$CTL" runtime | tee "$work/runtime" &&
    expect_in "^time [0-9.]+ s, cycle counter [0-9.]+ GHz, [0-9]+ worker\(s\), [0-9.]+ clocks/packet" "$work/runtime" &&
    expect_in "^  receive +[1-9][0-9]* +[1-9][0-9]* +[0-9.]+ " "$work/runtime" &&
    expect_in "^  (create|established) +[1-9]" "$work/runtime" &&
    expect_in "^  transmit +[1-9]" "$work/runtime" &&
    expect_in "^  idle +[1-9][0-9]* +0 +[0-9.]+/call" "$work/runtime"
}
check "passgatectl runtime: clear, then per-stage calls, packets and clocks of one exchange" t_runtime

# Ten reloads under continuous traffic: UDP at 400 packets/s with every
# answer counted, and a TCP connection exchanging a message every 20 ms.
pg_ns pg-sub1 $TOOL udp-stream "$PG_SERVER" 9000 41000 400 14 >"$work/udp-stream" 2>&1 &
udp_stream=$!
pg_ns pg-sub2 $TOOL tcp-stream "$PG_SERVER" 9002 14 >"$work/tcp-stream" 2>&1 &
tcp_stream=$!
sleep 1.5
reload_failures=0
for i in 1 2 3 4 5 6 7 8 9 10; do
  if ((i % 2)); then cp "$work/policy-b.yaml" "$cfg.new"; else cp "$work/policy-a.yaml" "$cfg.new"; fi
  mv "$cfg.new" "$cfg"
  if ((i <= 5)); then
    kill -HUP "$PG_PID"
    sleep 1
  else
    "$CTL" reload >>"$work/reloads" 2>&1 || reload_failures=$((reload_failures + 1))
    sleep 0.8
  fi
done
wait $udp_stream
udp_rc=$?
wait $tcp_stream
tcp_rc=$?
t_reloads_applied() {
  cat "$work/reloads"
  "$CTL" config | tee "$work/config-11"
  [[ $reload_failures -eq 0 ]] && expect_in "^generation 11$" "$work/config-11" &&
    expect_in "^reloads applied 10, rejected 0$" "$work/config-11" &&
    grep -c "reload of .* applied" "$work/passgate.log" | grep -qx 10
}
check "ten reloads (five SIGHUP, five passgatectl) all applied: generation 11" t_reloads_applied
t_zero_loss_udp() { cat "$work/udp-stream"; [[ $udp_rc -eq 0 ]] && expect_in "lost 0$" "$work/udp-stream"; }
check "UDP through the gateway across the ten reloads: no packet lost" t_zero_loss_udp
t_tcp_survives() { cat "$work/tcp-stream"; [[ $tcp_rc -eq 0 ]] && expect_in "^messages ([0-9]+) echoed \1 " "$work/tcp-stream"; }
check "TCP connection across the ten reloads: every message echoed, never reset" t_tcp_survives

t_broken() {
  cp "$work/policy-broken.yaml" "$cfg"
  ! "$CTL" reload >"$work/broken" 2>&1
  local rc=$?
  cat "$work/broken"
  [[ $rc -eq 0 ]] && expect_in "reload rejected; the running policy \(generation 11\) stays" "$work/broken" &&
    expect_in "$cfg:$broken_line:[0-9]+: error:" "$work/broken" &&
    expect_in "reload of .* rejected" "$work/passgate.log"
}
check "a broken file is refused with file:line:column and the policy stays (passgatectl exit 1)" t_broken
t_restart_only() {
  cp "$work/policy-mtu.yaml" "$cfg"
  ! "$CTL" reload >"$work/mtu" 2>&1
  cat "$work/mtu"
  expect_in "ports: 'outside' changes; ports change only with a restart" "$work/mtu"
}
check "a port change is refused: it needs a restart" t_restart_only
t_still_running() {
  cp "$work/policy-a.yaml" "$cfg"
  pg_ns pg-sub1 $TOOL udp-ask "$PG_SERVER" 9000 40099 | tee "$work/after"
  expect_in '^seen 198\.51\.100\.1[0-3]:[0-9]+$' "$work/after" &&
    "$CTL" config | tee "$work/config-last" && expect_in "^reloads applied 10, rejected 2$" "$work/config-last"
}
check "after the refused reloads traffic still flows under generation 11" t_still_running

t_prometheus() {
  pg_ns pg-gw curl -sf http://127.0.0.1:9470/metrics >"$work/metrics" || return 1  # prometheus: 9470
  promtool check metrics <"$work/metrics" || return 1
  grep -E '^passgate_pool_port_blocks_in_use\{pool="demo",state="active"\} [1-9]' "$work/metrics" &&
    grep -E '^passgate_config_generation 11$' "$work/metrics" &&
    grep -E '^passgate_config_reloads_total\{result="rejected"\} 2$' "$work/metrics" &&
    grep -E '^passgate_export_records_total\{exporter="ipfix"\} [1-9]' "$work/metrics" &&
    grep -E '^passgate_worker_stage_cycles_total\{worker="0",stage="receive"\} [1-9]' "$work/metrics" &&
    grep -E '^passgate_worker_stage_packets_total\{worker="0",stage="transmit"\} [1-9]' "$work/metrics"
}
check "Prometheus (control.prometheus from YAML): pool gauges, reloads, exports, runtime stages; promtool accepts it" t_prometheus

# Stop passgate: its blocks are still held, so the exports so far are the
# allocations; then read what the collectors got.
stop_passgate
sleep 0.5
for p in "${collectors[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
wait "${collectors[@]}" 2>/dev/null
t_nfdump() {
  local file
  file=$(ls "$work"/flows/nfcapd.2* 2>/dev/null | head -1)
  [[ -n "$file" ]] || { cat "$work/nfcapd.log"; return 1; }
  TZ=UTC nfdump -q -r "$file" -o json >"$work/nfdump.json" || return 1
  python3 - "$work/nfdump.json" "${public_endpoint%:*}" "$PG_SUB1" <<'PY'
import sys
# nfdump 1.7.1's "json" is one flat object per record, not one JSON document.
records = []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        records.append({})
    elif '" : ' in line and records:
        key, value = line.split('" : ', 1)
        records[-1][key.strip('"')] = value.rstrip(",").strip('"')
alloc = [r for r in records if r.get("nat_event_id") == "16"]
print(len(records), "records,", len(alloc), "port block allocations")
mine = [r for r in alloc if r.get("src4_addr") == sys.argv[3]]
assert mine, alloc[:3]
assert mine[0]["src4_xlt_ip"] == sys.argv[2], mine[0]
print("block allocation for", sys.argv[3], "on", mine[0]["src4_xlt_ip"], "at", mine[0].get("t_event"))
PY
}
check "IPFIX (RFC 8158) to nfcapd: nfdump shows the block allocation, inside and public address" t_nfdump
t_tshark_ipfix() {
  tshark -r "$work/ipfix.pcapng" -d "udp.port==$IPFIX_PORT,cflow" -Y "cflow.nat_event == 16" \
    -T fields -e cflow.srcaddr -e cflow.post_natsource_ipv4_address -e cflow.port_range_start -e cflow.port_range_end \
    -e cflow.port_range_step_size 2>/dev/null | tee "$work/ranges"
  grep -qP "^${PG_SUB1//./\\.}\t${public_endpoint%:*}\t[0-9]+\t[0-9]+\t1$" "$work/ranges" &&
    python3 - "$work/ranges" "${public_endpoint#*:}" "$PG_SUB1" <<'PY'
import sys
port = int(sys.argv[2])
rows = [l.split("\t") for l in open(sys.argv[1]) if l.startswith(sys.argv[3] + "\t")]
assert any(int(r[2]) <= port <= int(r[3]) and int(r[3]) - int(r[2]) == 255 for r in rows), rows
print("port", port, "inside a logged 256-port range")
PY
}
check "IPFIX port range (portRangeStart/End/StepSize) holds the port the server saw (tshark)" t_tshark_ipfix
t_syslog() {
  cat "$work/syslog.log" | head -5
  grep -E "^1\|local3\|passgate\|NAT-BLOCK-ALLOC\|\[.*inside=.${PG_SUB1//./\\.}. public=.${public_endpoint%:*}." "$work/syslog.log"
}
check "RFC 5424 syslog to rsyslogd: version 1, facility local3, the subscriber and its public address" t_syslog

echo "1..$n"
[[ $failed -eq 0 ]]
