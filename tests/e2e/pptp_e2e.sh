#!/usr/bin/env bash
# PPTP passthrough end to end: two clients (PNS, scapy + a real TCP
# connection) behind ONE public address each open two calls with the SAME
# Call IDs (1 and 2) to one server (PAC); every Outgoing-Call-Reply must
# quote the client's own Call ID, every GRE packet must reach the client
# whose call it belongs to with its own Call ID, and calls must clear.
# The one-call-per-client scenario also runs through the Linux kernel's NAT
# with its PPTP helper (nf_nat_pptp) in passgate's place and must pass there
# too: proof that the test exercises real PPTP semantics. (The kernel helper
# keeps one call per control connection, so the two-call case is passgate's
# alone.) Finally PPTP disabled in the policy: GRE dropped and counted.
# Prints TAP.   tests/e2e/pptp_e2e.sh PASSGATE_BINARY
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
PEER="$PY $here/pptp_peer.py"
e2e_require_root
e2e_start pptp

sed -e 's|public: \[198.51.100.10-198.51.100.13\]|public: [198.51.100.10]|' "$repo/conf/demo.yaml" >"$work/one.yaml"
sed -e 's|  pools:|  passthrough: {pptp: {enabled: false}}\n  pools:|' "$work/one.yaml" >"$work/off.yaml"

# Both clients at once with the given Call IDs; results in $work/pns{1,2}-TAG.
clients() {
  local tag="$1"
  shift
  ip netns exec pg-net $PEER pac 12 >"$work/pac-$tag" 2>&1 &
  sleep 0.5
  ip netns exec pg-sub1 $PEER pns "$PG_SERVER" eth0 "$@" >"$work/pns1-$tag" 2>&1 &
  local a=$!
  ip netns exec pg-sub2 $PEER pns "$PG_SERVER" eth0 "$@" >"$work/pns2-$tag" 2>&1 &
  local b=$!
  wait $a
  echo $? >"$work/pns1-$tag.rc"
  wait $b
  echo $? >"$work/pns2-$tag.rc"
}
passed() { cat "$1"; [[ "$(cat "$1.rc")" == 0 ]]; }
counter_at_least() { grep -Eq "^ +$1 +([0-9]+)$" "$3" && [[ $(sed -nE "s/^ +$1 +([0-9]+)$/\1/p" "$3") -ge $2 ]] || { grep -v '^TELEMETRY' "$3"; return 1; }; }

# 1. passgate.
topo_up
start_passgate "$work/one.yaml" "$work/passgate.log" || exit 1
pg_ns pg-sub1 ping -c1 -W1 100.64.0.1 >/dev/null
pg_ns pg-sub2 ping -c1 -W1 100.64.0.1 >/dev/null
clients gw 1 2
clients gw1 1
stop_passgate
check "passgate: client 1 (Call IDs 1, 2) gets its own replies and GRE" passed "$work/pns1-gw"
check "passgate: client 2, same public address, same Call IDs, gets its own" passed "$work/pns2-gw"
check "passgate: one call each (as the kernel test below): both clients pass" \
  bash -c "cat '$work/pns1-gw1' '$work/pns2-gw1'; [[ \$(cat '$work/pns1-gw1.rc') == 0 && \$(cat '$work/pns2-gw1.rc') == 0 ]]"
check "passgate: six calls translated, each cleared" \
  bash -c "grep -Eq '^ +pptp_calls_created +6$' '$work/passgate.log' && grep -Eq '^ +pptp_calls_cleared +6$' '$work/passgate.log' || { cat '$work/passgate.log'; false; }"
check "passgate: GRE translated both ways" bash -c "$(declare -f counter_at_least); counter_at_least pptp_gre_translated_inbound 18 '$work/passgate.log' && counter_at_least pptp_gre_translated_outbound 6 '$work/passgate.log'"
topo_down

# 2. The Linux kernel NAT with its PPTP helper in passgate's place.
topo_up
pg_ns pg-gw ip addr add 100.64.0.1/24 dev pg-in
pg_ns pg-gw ip addr add 198.51.100.10/24 dev pg-out
pg_ns pg-gw ip route add default via "$PG_ROUTER"
pg_ns pg-gw sysctl -qw net.ipv4.ip_forward=1
pg_ns pg-gw nft -f - <<'NFT'
table ip pptp_nat {
  ct helper pptp { type "pptp" protocol tcp; }
  chain pre { type filter hook prerouting priority 0; tcp dport 1723 ct helper set "pptp"; }
  chain post { type nat hook postrouting priority 100; oifname "pg-out" masquerade; }
}
NFT
clients kernel 1
check "kernel NAT + nf_nat_pptp: client 1 (one call) passes the same test" passed "$work/pns1-kernel"
check "kernel NAT + nf_nat_pptp: client 2 (one call, same Call ID) passes the same test" passed "$work/pns2-kernel"
topo_down

# 3. PPTP disabled in the policy.
topo_up
start_passgate "$work/off.yaml" "$work/passgate-off.log" || exit 1
clients off 1
stop_passgate
check "PPTP disabled: the clients' calls get no GRE" bash -c "[[ \$(cat '$work/pns1-off.rc') != 0 ]]"
check "PPTP disabled: GRE dropped and counted as pptp_disabled" \
  bash -c "grep -Eq '^ +drop pptp_disabled +[1-9]' '$work/passgate-off.log' || { cat '$work/passgate-off.log'; false; }"
echo "1..$n"
[[ $failed -eq 0 ]]
