#!/usr/bin/env bash
# Abuse end to end (issue 11 point 13): the real passgate binary between
# network namespaces, attacked from both sides at once while other
# subscribers go on working.
#
#   pgab-a  100.64.0.11  abuser: hammers new UDP and TCP flows far beyond its limits
#   pgab-b  100.64.0.12  keeps an ESP flow up; new TCP, UDP and fragmented UDP flows
#   pgab-c  100.64.0.13  keeps a PPTP call up (TCP 1723 + GRE); new TCP and UDP flows
#   pgab-d  100.64.0.14  victim: one live UDP mapping and one TCP connection, flooded
#   pgab-s  100.64.0.20  behind the port forwards 198.51.100.30:80/tcp and :53/udp
#   pgab-e  100.64.0.100-115  new subscribers arriving during the abuse
#        |  (bridge in pgab-lan)
#   [passgate in pgab-gw: ab-in 100.64.0.1/24 | ab-out 198.51.100.1/24, pool 198.51.100.10-13]
#        |
#   pgab-rtr 198.51.100.254 / 203.0.113.1 (blackhole default route): the attacker
#        |   writes spoofed frames straight onto the link to passgate
#   pgab-net 203.0.113.10: UDP/TCP echo servers, a PPTP server, an ESP responder
#
# passgate runs with a small session table (4096) and per-subscriber limits
# (256 sessions, 4 blocks of 64 ports), a small fragment table (512 flows)
# and a small event ring (32 events): the sizes of a real box divided by the
# speed of libpcap on veth (tens of thousands of packets a second here,
# millions on a NIC), so that what a flood does at line rate happens here
# too. NAT events go as syslog to a collector on the gateway's loopback.
#
# Timeline: 3.5 s of normal traffic; then A hammers for 9 s; 2 s in, the
# internet side floods for about 5 s, ~42,000 frames (spoofed TCP SYN and
# UDP at the port forwards and at D's mappings, TCP ACKs, UDP at random pool
# ports, first fragments with random IDs and one fragment flow refreshed all
# along, later fragments without a first); new subscribers arrive
# throughout; then 5 quiet seconds. B and C work throughout (a new TCP and
# UDP flow each every 0.4 s, ESP and GRE every 50 ms). The checks then read
# passgatectl and the collector. About 35 s.
# Prints TAP; exits non-zero if any check failed.
#   tests/e2e/abuse_e2e.sh PASSGATE_BINARY PASSGATECTL_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
PEERS="$PY $here/abuse_peers.py"
FLOOD="$PY $here/abuse_flood.py"
PREFIX=pgab
CTLP=("$CTL" --file-prefix "$PREFIX")

e2e_require_root

# A topology of its own (six subscribers, a router that drops answers to
# spoofed sources): topology.sh's helpers run on these namespaces.
PG_NS=(pgab-gw pgab-lan pgab-a pgab-b pgab-c pgab-d pgab-s pgab-e pgab-rtr pgab-net)
PG_GW_NS=pgab-gw
PG_RTR_NS=pgab-rtr
SERVER=203.0.113.10
SUB_A=100.64.0.11 SUB_B=100.64.0.12 SUB_C=100.64.0.13 SUB_D=100.64.0.14 SUB_S=100.64.0.20
PF=198.51.100.30
POOL=198.51.100.10,198.51.100.11,198.51.100.12,198.51.100.13
LATE=()
for i in $(seq 100 115); do LATE+=("100.64.0.$i"); done
# Sizes (environment overrides are for calibrating the test itself: with
# room for everything, every check about other subscribers must pass even
# on an engine without the limits).
MAX_SESSIONS=${PASSGATE_ABUSE_MAX_SESSIONS:-4096}
EVENT_RING=${PASSGATE_ABUSE_EVENT_RING:-32}
FRAG_FLOWS=${PASSGATE_ABUSE_FRAG_FLOWS:-512}
SUB_LIMIT=256
SYSLOG_PORT=5514

e2e_start abuse
SAMPLER=
e2e_stop_extras() { [[ -z "$SAMPLER" ]] || kill "$SAMPLER" 2>/dev/null; }

topo_up() {
  topo_down
  local n
  for n in "${PG_NS[@]}"; do
    ip netns add "$n"
    pg_ns "$n" ip link set lo up
    pg_ns "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  pg_ns pgab-lan ip link add br0 type bridge mcast_snooping 0
  pg_ns pgab-lan ip link set br0 up
  ip link add l-gw netns pgab-lan type veth peer name ab-in netns pgab-gw
  local h addr
  for h in a b c d s e; do
    ip link add "l-$h" netns pgab-lan type veth peer name eth0 netns "pgab-$h"
    pg_ns pgab-lan ip link set "l-$h" master br0
    pg_ns pgab-lan ip link set "l-$h" up
    pg_no_offload pgab-lan "l-$h"
    pg_ns "pgab-$h" ip link set eth0 up
    pg_no_offload "pgab-$h" eth0
  done
  pg_ns pgab-lan ip link set l-gw master br0
  pg_ns pgab-lan ip link set l-gw up
  pg_no_offload pgab-lan l-gw
  pg_ns pgab-a ip addr add $SUB_A/24 dev eth0
  pg_ns pgab-b ip addr add $SUB_B/24 dev eth0
  pg_ns pgab-c ip addr add $SUB_C/24 dev eth0
  pg_ns pgab-d ip addr add $SUB_D/24 dev eth0
  pg_ns pgab-s ip addr add $SUB_S/24 dev eth0
  for addr in "${LATE[@]}"; do pg_ns pgab-e ip addr add "$addr/24" dev eth0; done
  for h in a b c d s e; do pg_ns "pgab-$h" ip route add default via 100.64.0.1; done

  ip link add ab-out netns pgab-gw type veth peer name r-gw netns pgab-rtr
  ip link add r-net netns pgab-rtr type veth peer name eth0 netns pgab-net
  pg_ns pgab-rtr ip addr add 198.51.100.254/24 dev r-gw
  pg_ns pgab-rtr ip addr add 203.0.113.1/24 dev r-net
  pg_ns pgab-rtr ip link set r-gw up
  pg_ns pgab-rtr ip link set r-net up
  # Answers to spoofed sources die here, silently (no ICMP back).
  pg_ns pgab-rtr ip route add blackhole default
  pg_ns pgab-rtr sysctl -qw net.ipv4.ip_forward=1
  pg_no_offload pgab-rtr r-gw
  pg_no_offload pgab-rtr r-net
  pg_ns pgab-net ip addr add $SERVER/24 dev eth0
  pg_ns pgab-net ip link set eth0 up
  pg_ns pgab-net ip route add default via 203.0.113.1
  pg_no_offload pgab-net eth0
  for n in ab-in ab-out; do
    pg_ns pgab-gw ip link set "$n" up
    pg_no_offload pgab-gw "$n"
  done
}

# The ports are libpcap on the veth ends (DPDK's net_pcap), not net_af_packet
# as in the other tests: DPDK's af_packet PMD joins a PACKET_FANOUT group with
# PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IP fragments before
# passgate sees them (and a reassembled datagram larger than a frame arrives
# truncated): the fragment flood and the fragmented flows would never reach
# the engine as fragments. PASSGATE_ABUSE_PORTS=af_packet runs it on
# af_packet anyway.
port_device() {
  if [[ "${PASSGATE_ABUSE_PORTS:-pcap}" == af_packet ]]; then echo "net_af_packet$1,iface=$2"
  else echo "net_pcap$1,rx_iface_in=$2,tx_iface=$2"; fi
}
cfg="$work/abuse.yaml"
cat >"$cfg" <<EOF
dataplane:
  eal: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix", "$PREFIX", "--log-level", "lib.eal:error"]
  mbufs: auto
  burst: 32
  neighbour: {reachable_s: 60, retry_ms: 200, max_retries: 5, queue: 32, table_size: 256}
ports:
  - {name: inside, device: "$(port_device 0 ab-in)", role: inside, address: 100.64.0.1/24}
  - {name: outside, device: "$(port_device 1 ab-out)", role: outside, address: 198.51.100.1/24, gateway: 198.51.100.254}
nat:
  max_sessions: $MAX_SESSIONS
  max_subscribers: 1024
  random_seed: 2026
  event_ring: $EVENT_RING
  fragments: {flows: $FRAG_FLOWS, hold_slots: 64, hold_bytes: 2048}
  pools:
    - name: abuse
      subscribers: [100.64.0.0/24]
      public: [198.51.100.10-198.51.100.13]
      ports: 1024-65535
      block_size: 64
      max_blocks_per_subscriber: 4
      max_sessions_per_subscriber: $SUB_LIMIT
      filtering: endpoint-independent
  static:
    - {protocol: tcp, inside: $SUB_S:8080, public: $PF:80}
    - {protocol: udp, inside: $SUB_S:5353, public: $PF:53}
control:
  log_level: info
  nat_events:
    syslog: {server: 127.0.0.1:$SYSLOG_PORT, facility: local3}
EOF

SECONDS=0
topo_up
pg_ns pgab-gw $PEERS collect $SYSLOG_PORT "$work/events.log" 120 >/dev/null 2>&1 &
sleep 0.3
start_passgate "$cfg" "$work/passgate.log" || { echo "1..0 # passgate did not start"; exit 1; }

# Servers.
pg_ns pgab-net $TOOL udp-echo 9000 >/dev/null 2>&1 &
pg_ns pgab-net $TOOL tcp-echo 9001 >/dev/null 2>&1 &
pg_ns pgab-net $PEERS seen-hold 9003 60 >/dev/null 2>&1 &
pg_ns pgab-net $PEERS tunnels 60 >"$work/tunnels.out" 2>&1 &
pg_ns pgab-s $TOOL tcp-echo 8080 >/dev/null 2>&1 &
sleep 0.5
for h in a b c d s e; do pg_ns "pgab-$h" ping -c1 -W1 100.64.0.1 >/dev/null 2>&1; done

# D's live mappings, the targets of the floods at subscribers' mappings.
pg_ns pgab-d $PEERS hold $SERVER 9000 9003 40000 40 >"$work/hold.out" 2>&1 &
for _ in $(seq 1 50); do grep -q '^tcp ' "$work/hold.out" 2>/dev/null && break; sleep 0.1; done
D_UDP=$(sed -n 's/^udp //p' "$work/hold.out")
D_TCP=$(sed -n 's/^tcp //p' "$work/hold.out")
t_targets() {
  cat "$work/hold.out"
  [[ "$D_UDP" =~ ^198\.51\.100\.1[0-3]:[0-9]+$ && "$D_TCP" =~ ^198\.51\.100\.1[0-3]:[0-9]+$ ]]
}
check "setup: D holds a live UDP mapping ($D_UDP) and TCP connection ($D_TCP), the flood's targets" t_targets

# The timeline, in unix seconds: T0 the abuse starts (A hammers for 9 s),
# T0+1 new subscribers start arriving (one every 0.4 s), T0+2 the
# internet side floods (about 5 s); "after" is from 1 s past the end of both.
# B and C work from T0-3 to T0+15.
now=$(date +%s.%N)
T0=$($PY -c "print($now + 3.5)")
WORK_S=18.5
pg_ns pgab-b $PEERS esp $SERVER 0xb1000002 $WORK_S 0.05 >"$work/esp.out" 2>&1 &
esp_pid=$!
pg_ns pgab-c $PEERS pptp $SERVER 1 $WORK_S 0.05 >"$work/pptp.out" 2>&1 &
pptp_pid=$!
pg_ns pgab-b $PEERS flows $SERVER 9000 9001 $WORK_S 0.4 3000 >"$work/flows-b.out" 2>&1 &
flows_b=$!
pg_ns pgab-c $PEERS flows $SERVER 9000 9001 $WORK_S 0.4 >"$work/flows-c.out" 2>&1 &
flows_c=$!
# Active sessions, sampled twice a second.
(
  while :; do
    "${CTLP[@]}" --json stats 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)["/passgate/nat"]["sessions"])' 2>/dev/null
    sleep 0.5
  done
) >"$work/sessions.samples" &
SAMPLER=$!

# Inside: A opens 5000 new flows a second for 9 s (UDP from 512 ports in
# turn, each to a new destination port; every tenth a TCP SYN).
pg_ns pgab-a env AT=$T0 $FLOOD hammer $SERVER 9 5000 512 >"$work/hammer.out" 2>&1 &
hammer_pid=$!
# Outside: spoofed sources, straight onto the wire to passgate's outside
# port (built now, sent from T0+2).
pg_ns pgab-rtr ping -c1 -W1 198.51.100.1 >/dev/null 2>&1
gw_mac=$(ip -n pgab-rtr neigh show 198.51.100.1 | grep -o 'lladdr [0-9a-f:]*' | cut -d' ' -f2)
rtr_mac=$(ip -n pgab-rtr -o link show r-gw | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
specs=(
  "syn:$PF:80:12000"                       # SYN flood at the TCP port forward
  "udp:$PF:53:4000"                        # UDP flood at the UDP port forward
  "ack:$PF:80:2000"                        # no session starts with an ACK
  "udp:$POOL:0:3000"                       # random ports of the pool: no mapping
  "frag1:$PF:53:8000"                      # first fragments, random IDs
  "pin:$PF:53:500"                         # one fragment flow refreshed all along
  "fragn:$POOL,$PF:0:3000"                 # later fragments whose first never comes
)
if [[ -n "$D_UDP" && -n "$D_TCP" && "$D_UDP$D_TCP" != *none* ]]; then
  specs+=(
    "udp:${D_UDP%:*}:${D_UDP#*:}:6000"     # UDP at D's endpoint-independent mapping
    "syn:${D_TCP%:*}:${D_TCP#*:}:4000"     # SYNs at D's TCP mapping
  )
fi
pg_ns pgab-rtr env AT="$($PY -c "print($T0 + 2)")" $FLOOD spoof r-gw "$rtr_mac" "$gw_mac" 8 8000 "${specs[@]}" \
  >"$work/spoof.out" 2>&1 &
spoof_pid=$!
sleep "$($PY -c "import time; print(max(0, $T0 + 1 - time.time()))")"
pg_ns pgab-e $PEERS late $SERVER 9000 0.4 "${LATE[@]}" >"$work/late.out" 2>&1 &
late_pid=$!
wait $spoof_pid
wait $hammer_pid
wait $late_pid
echo "# spoof: $(cat "$work/spoof.out")"
echo "# hammer: $(cat "$work/hammer.out")"
wait $esp_pid $pptp_pid $flows_b $flows_c
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=

# Counters while passgate still runs (events drained every 10 ms).
sleep 0.5
alive=0
kill -0 "$PG_PID" 2>/dev/null && alive=1
"${CTLP[@]}" --json stats >"$work/stats.json" 2>&1
"${CTLP[@]}" --json drops >"$work/drops.json" 2>&1
"${CTLP[@]}" --json exports >"$work/exports.json" 2>&1
"${CTLP[@]}" --json passthrough >"$work/passthrough.json" 2>&1
"${CTLP[@]}" --json public tcp $PF 80 >"$work/pf-tcp.json" 2>&1
"${CTLP[@]}" --json public udp $PF 53 >"$work/pf-udp.json" 2>&1
"${CTLP[@]}" --json public udp "${D_UDP%:*}" "${D_UDP#*:}" >"$work/d-udp.json" 2>&1
"${CTLP[@]}" --json public tcp "${D_TCP%:*}" "${D_TCP#*:}" >"$work/d-tcp.json" 2>&1
sleep 1

# Everything the checks need, in one JSON file.
$PY - "$work" "$MAX_SESSIONS" "$SUB_LIMIT" >"$work/summary.json" <<'PY'
import json, sys, os
w, max_sessions, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name, key=None):
    try:
        d = json.load(open(os.path.join(w, name)))
        return d[key] if key else d
    except Exception as e:
        return {"error": f"{name}: {e}"}
def lines(name):
    try:
        return [json.loads(l) for l in open(os.path.join(w, name)) if l.startswith("{")]
    except Exception:
        return []
spoof, hammer = (lines("spoof.out") or [{}])[0], (lines("hammer.out") or [{}])[0]
start = min(x for x in (spoof.get("start"), hammer.get("start")) if x) if (spoof or hammer) else 0
end = max(x for x in (spoof.get("end"), hammer.get("end")) if x) if (spoof or hammer) else 0
nat = load("stats.json", "/passgate/nat")
drops = load("drops.json", "/passgate/nat_drops")
exports = load("exports.json", "/passgate/exports")
def sessions_of(name):  # None when passgatectl gave no answer
    d = load(name)
    if not isinstance(d, dict) or "error" in d:
        return None
    d = next(iter(d.values()), {})
    return d.get("sessions", 0) if d.get("found") == "yes" else 0
events = open(os.path.join(w, "events.log")).read() if os.path.exists(os.path.join(w, "events.log")) else ""
limit_records = {a: 0 for a in ("100.64.0.11", "100.64.0.14", "100.64.0.20")}
for line in events.splitlines():
    if "NAT-SESSION-LIMIT" in line:
        for a in limit_records:
            if f'inside="{a}"' in line:
                limit_records[a] += line.count("NAT-SESSION-LIMIT")
def flows(name):
    r = {}
    for x in lines(name):
        phase = "before" if x["t"] < start else "during" if x["t"] <= end else "after" if x["t"] >= end + 1.0 else "settle"
        r.setdefault(x["kind"], {}).setdefault(phase, [0, 0])
        r[x["kind"]][phase][0] += x["ok"]
        r[x["kind"]][phase][1] += 1
        if spoof and spoof["start"] <= x["t"] <= spoof["end"]:  # while the internet side floods
            r[x["kind"]].setdefault("flood", [0, 0])
            r[x["kind"]]["flood"][0] += x["ok"]
            r[x["kind"]]["flood"][1] += 1
    return r
def tunnel(name):
    d = (lines(name) or [{}])[0]
    got = {s for s, _ in d.get("received", [])}
    r = {}
    for s, t in d.get("sent", []):
        phase = "before" if t < start else "during" if t <= end else "after" if t >= end + 1.0 else "settle"
        r.setdefault(phase, [0, 0])
        r[phase][0] += s in got
        r[phase][1] += 1
    return {"phases": r, **{k: v for k, v in d.items() if k not in ("sent", "received")}}
samples = [int(l) for l in open(os.path.join(w, "sessions.samples")) if l.strip().isdigit()]
late = lines("late.out")
print(json.dumps({
    "window": [start, end],
    "nat": nat, "drops": drops, "exports": exports,
    "pf_sessions": {"tcp": sessions_of("pf-tcp.json"), "udp": sessions_of("pf-udp.json")},
    "d_sessions": {"udp": sessions_of("d-udp.json"), "tcp": sessions_of("d-tcp.json")},
    "block_records": {"allocated": events.count("NAT-BLOCK-ALLOC"), "released": events.count("NAT-BLOCK-RELEASE")},
    "limit_records": limit_records,
    "event_lines": len(events.splitlines()),
    "sessions_max_sampled": max(samples) if samples else -1, "samples": len(samples),
    "flows_b": flows("flows-b.out"), "flows_c": flows("flows-c.out"),
    "esp": tunnel("esp.out"), "pptp": tunnel("pptp.out"),
    "late": {"ok": sum(x["ok"] for x in late), "total": len(late),
             "during_ok": sum(x["ok"] for x in late if start <= x["t"] <= end),
             "during": sum(1 for x in late if start <= x["t"] <= end)},
}, indent=1))
PY

# q EXPR: evaluate a Python expression over the summary (s), print it, succeed if true.
q() {
  $PY - "$work/summary.json" "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n, d = s.get("nat", {}), s.get("drops", {})
def pct(pair): return pair[0] / pair[1] if pair and pair[1] else 0.0
def ok(f, kind, phase, need):
    pair = f.get(kind, {}).get(phase, [0, 0])
    print(f"  {kind} {phase}: {pair[0]}/{pair[1]} answered")
    return pair[1] > 0 and pct(pair) >= need
r = eval(sys.argv[2])
sys.exit(0 if r else 1)
PY
}

check "before the abuse: B and C open TCP and UDP flows, B's fragmented UDP crosses" \
  q 'all([ok(s["flows_b"],"tcp","before",1), ok(s["flows_b"],"udp","before",1), ok(s["flows_b"],"frag","before",1), ok(s["flows_c"],"tcp","before",1), ok(s["flows_c"],"udp","before",1)])'
check "during the abuse: B's new TCP and UDP flows succeed (>= 90%)" \
  q 'all([ok(s["flows_b"],"tcp","during",0.9), ok(s["flows_b"],"udp","during",0.9)])'
check "during the abuse: C's new TCP and UDP flows succeed (>= 90%)" \
  q 'all([ok(s["flows_c"],"tcp","during",0.9), ok(s["flows_c"],"udp","during",0.9)])'
check "during the fragment flood: B's fragmented UDP datagrams cross (>= 90%)" \
  q 'ok(s["flows_b"],"frag","flood",0.9)'
check "after the abuse: every new TCP, UDP and fragmented flow of B and C succeeds" \
  q 'all([ok(s["flows_b"],"tcp","after",1), ok(s["flows_b"],"udp","after",1), ok(s["flows_b"],"frag","after",1), ok(s["flows_c"],"tcp","after",1), ok(s["flows_c"],"udp","after",1)])'
check "new subscribers arriving during the abuse get a port block and are answered (16 of 16)" \
  q 'print("  late subscribers", s["late"]) or (s["late"]["total"] == 16 and s["late"]["ok"] == 16)'
check "B's ESP flow stays up: answered before, during (>= 80%) and after (>= 90%) the abuse" \
  q 'print("  esp", s["esp"]["phases"]) or all(pct(s["esp"]["phases"].get(p)) >= need for p, need in (("before", 0.9), ("during", 0.8), ("after", 0.9)))'
check "C's PPTP call stays up: GRE both ways during (>= 80%) and after (>= 90%); the call clears on its control connection" \
  q 'print("  pptp", s["pptp"]) or (s["pptp"].get("setup") and s["pptp"].get("cleared") and all(pct(s["pptp"]["phases"].get(p)) >= need for p, need in (("before", 0.9), ("during", 0.8), ("after", 0.9))))'
check "the session table never filled: no session_table_full drop, sampled sessions below max_sessions" \
  q 'print("  session_table_full", d.get("session_table_full"), "sessions max sampled", s["sessions_max_sampled"], "of", s["samples"], "samples; now", n.get("sessions")) or (d.get("session_table_full") == 0 and 0 <= s["sessions_max_sampled"] < '"$MAX_SESSIONS"')'
check "the port forwards' host is held to its own session limit ($SUB_LIMIT): sessions on 198.51.100.30:80+53" \
  q 'print("  port forward sessions", s["pf_sessions"]) or (None not in s["pf_sessions"].values() and sum(s["pf_sessions"].values()) <= '"$SUB_LIMIT"')'
check "D's flooded mappings are held to D's session limit ($SUB_LIMIT)" \
  q 'print("  D mapping sessions", s["d_sessions"]) or (None not in s["d_sessions"].values() and sum(s["d_sessions"].values()) <= '"$SUB_LIMIT"')'
check "drops by reason: subscriber_session_limit (A at its limit, D and the port forward flooded)" \
  q 'print("  subscriber_session_limit", d.get("subscriber_session_limit"), "ports_exhausted", d.get("ports_exhausted")) or d.get("subscriber_session_limit", 0) > 0'
check "session-limit events logged for A, D and the port forward's host S" \
  q 'print("  NAT-SESSION-LIMIT records by inside address", s["limit_records"]) or all(v > 0 for v in s["limit_records"].values())'
check "drops by reason: spoofed traffic counted as no_mapping and tcp_not_syn" \
  q 'print("  no_mapping", d.get("no_mapping"), "tcp_not_syn", d.get("tcp_not_syn"), "filtered", d.get("filtered")) or (d.get("no_mapping", 0) > 0 and d.get("tcp_not_syn", 0) > 0)'
check "drops by reason: the fragment flood counted under fragment reasons" \
  q 'print("  ", {k: v for k, v in d.items() if "fragment" in k}, "held", n.get("fragments_held")) or sum(v for k, v in d.items() if "fragment" in k) > 0'
check "event log: every port block allocation and release passgate counted reached the collector" \
  q 'print("  counted allocated", n.get("blocks_allocated"), "released", n.get("blocks_released"), "/ records", s["block_records"]) or (n.get("blocks_allocated", -1) == s["block_records"]["allocated"] and n.get("blocks_released", -1) == s["block_records"]["released"] and s["block_records"]["allocated"] > 0)'
check "no NAT event lost (events_lost == 0)" \
  q 'print("  events_lost", n.get("events_lost"), "exports", s["exports"], "lines at the collector", s["event_lines"]) or n.get("events_lost") == 0'
check "passgate survived the abuse (still running)" test "$alive" -eq 1

stop_passgate
check "stops cleanly on SIGTERM with every buffer back in the pool" all_mbufs_back "$work/passgate.log"

# The figures, for the record.
$PY - "$work/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n, d = s["nat"], s["drops"]
print("# counters: sessions now %s, sessions_created %s (inbound %s), blocks_allocated %s, events_lost %s" % (
    n.get("sessions"), n.get("sessions_created"), n.get("sessions_created_inbound"), n.get("blocks_allocated"), n.get("events_lost")))
print("# drops: " + ", ".join(f"{k} {v}" for k, v in d.items() if v))
PY
echo "# ran ${SECONDS} s"
echo "1..$n"
[[ $failed -eq 0 ]]
