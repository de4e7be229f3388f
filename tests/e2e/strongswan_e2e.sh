#!/usr/bin/env bash
# strongSwan (IKEv2, pre-shared key, NAT-T) end to end: two subscribers
# behind ONE public address each bring up a tunnel to the same responder on
# the "internet" host; both must detect the NAT, float to UDP 4500, ping
# through their tunnel at the same time, survive a CHILD_SA and an IKE_SA
# rekey, and the router must see only 198.51.100.10 on UDP 4500.
# Prints TAP.   tests/e2e/strongswan_e2e.sh PASSGATE_BINARY
#
# How charon runs here (Debian 12's strongswan-charon):
# - The kernel has no XFRM/ESP, so ESP is done in userspace by the
#   kernel-libipsec plugin (a TUN device "ipsec0" per namespace, routes in
#   table 220); kernel-netlink still handles addresses and routes.
# - An explicit plugin `load` list (tests/e2e/strongswan/strongswan.conf.in)
#   replaces the system's; it needs kdf.
# - One charon per namespace, each with its own directory: its
#   strongswan.conf comes through STRONGSWAN_CONF (read by charon and
#   swanctl alike), and the vici socket and log live in that directory. The
#   pid file (/run/charon.pid) is fixed at build time, so each charon runs
#   under `unshare -m` with a private tmpfs on /run, which disappears with
#   the process. Nothing in /etc or the host's /run is touched.
# - Inner addresses come from documentation ranges: the server's tunnel end
#   is 192.0.2.1 on its lo (this kernel has no dummy links), virtual IPs
#   come from 192.0.2.100-199.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
e2e_require_root
CHARON=/usr/lib/ipsec/charon
e2e_require "$CHARON" swanctl tshark unshare
INNER=192.0.2.1

e2e_start swan
CHARON_PIDS=()
TSHARK_PID=
e2e_stop_extras() {
  local pid
  [[ -n "$TSHARK_PID" ]] && kill -TERM "$TSHARK_PID" 2>/dev/null
  for pid in "${CHARON_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${CHARON_PIDS[@]}"; do
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
}
charon_logs() {  # the end of every charon's log, as TAP comments
  local f
  for f in "$work"/*/charon.log "$work"/*/charon.out; do
    [[ -s "$f" ]] && { echo "# --- $f"; tail -30 "$f" | sed 's/^/#   /'; }
  done
}
bail() {  # bail REASON: the rest cannot run
  echo "Bail out! $1"
  charon_logs
  exit 1
}

# One public address for everybody: both subscribers share 198.51.100.10.
sed -e 's|public: \[198.51.100.10-198.51.100.13\]|public: [198.51.100.10]|' "$repo/conf/demo.yaml" >"$work/one.yaml"

# swan NS: swanctl against the charon of namespace NS.
swan() {
  local ns="$1"
  shift
  ip netns exec "$ns" env STRONGSWAN_CONF="$work/$ns/strongswan.conf" swanctl "$@"
}

# start_charon NS SWANCTL_CONF: starts charon in NS, waits for vici, loads the config.
start_charon() {
  local ns="$1" conf="$2" d="$work/$1"
  mkdir -p "$d"
  sed -e "s|@DIR@|$d|g" "$here/strongswan/strongswan.conf.in" >"$d/strongswan.conf"
  cp "$conf" "$d/swanctl.conf"
  # ip netns exec, env, unshare and sh all exec: $! is charon itself.
  ip netns exec "$ns" env STRONGSWAN_CONF="$d/strongswan.conf" \
    unshare -m --propagation private \
    sh -c 'mount -t tmpfs -o mode=0755 pg-swan-run /run && exec "$0"' "$CHARON" \
    >"$d/charon.out" 2>&1 &
  CHARON_PIDS+=($!)
  for _ in $(seq 1 50); do
    [[ -S "$d/charon.vici" ]] && break
    kill -0 "${CHARON_PIDS[-1]}" 2>/dev/null || return 1
    sleep 0.1
  done
  swan "$ns" --load-all --file "$d/swanctl.conf" >"$d/load.out" 2>&1 || { cat "$d/load.out"; return 1; }
}

# The SAs of NS in vici's raw form, one SA per line.
raw_sas() { swan "$1" --list-sas --raw 2>/dev/null; }
# child_spi NS: the inbound SPI of NS's installed CHILD_SA "pg".
child_spi() { raw_sas "$1" | grep -o 'state=INSTALLED[^}]*spi-in=[0-9a-f]*' | grep -o 'spi-in=[0-9a-f]*' | head -1; }
ike_spi() { raw_sas "$1" | grep -o 'initiator-spi=[0-9a-f]*' | head -1; }

topo_up
pg_ns pg-net ip addr add "$INNER/32" dev lo
start_passgate "$work/one.yaml" "$work/passgate.log" || bail "passgate did not start"

# The router's side of passgate: everything on the IKE ports, for the wire check.
ip netns exec pg-rtr tshark -q -i r-gw -f "udp port 500 or udp port 4500" -c 60 -a duration:120 \
  -w "$work/wire.pcapng" >"$work/tshark.out" 2>&1 &
TSHARK_PID=$!
for _ in $(seq 1 50); do grep -q Capturing "$work/tshark.out" && break; sleep 0.1; done

start_charon pg-net "$here/strongswan/responder.conf" || bail "responder charon did not start"
for i in 1 2; do
  sed -e "s|@ID@|sub$i.pg.test|" "$here/strongswan/initiator.conf.in" >"$work/initiator$i.conf"
  start_charon pg-sub$i "$work/initiator$i.conf" || bail "charon in pg-sub$i did not start"
done

# 1. Both initiators at once.
pids=()
for i in 1 2; do
  swan pg-sub$i --initiate --child pg --timeout 20 >"$work/initiate$i.out" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"

established() {  # established NS INITIATE_OUTPUT
  local ns="$1"
  tail -8 "$2"
  swan "$ns" --list-sas
  swan "$ns" --list-sas | grep -q 'ESTABLISHED' && swan "$ns" --list-sas | grep -q 'INSTALLED'
}
check "subscriber 1: IKE_SA established, CHILD_SA installed" established pg-sub1 "$work/initiate1.out"
check "subscriber 2: IKE_SA established, CHILD_SA installed" established pg-sub2 "$work/initiate2.out"
# nat-local: this end is behind a NAT; the IKE_SA floated to 4500 and ESP is UDP-encapsulated.
floated() {
  local ns="$1"
  raw_sas "$ns"
  raw_sas "$ns" | grep -q 'nat-local=yes' &&
    raw_sas "$ns" | grep -q 'local-port=4500' &&
    raw_sas "$ns" | grep -q 'remote-port=4500' &&
    raw_sas "$ns" | grep -q 'encap=yes'
}
check "subscriber 1 detected the NAT, floated to UDP 4500, ESP in UDP" floated pg-sub1
check "subscriber 2 detected the NAT, floated to UDP 4500, ESP in UDP" floated pg-sub2
# The responder sees two IKE_SAs from the same public address, different ports.
two_from_one() {
  raw_sas pg-net
  local ports
  ports=$(raw_sas pg-net | grep 'remote-host=198.51.100.10' | grep -o 'remote-port=[0-9]*' | sort -u | wc -l)
  [[ $(raw_sas pg-net | grep -c 'nat-remote=yes') -ge 2 && $ports -ge 2 ]]
}
check "responder: two IKE_SAs from 198.51.100.10 on two ports, both behind NAT" two_from_one

# ping_both TAG: both subscribers ping the server's inner address at once.
ping_both() {
  local tag="$1" i pids=()
  for i in 1 2; do
    pg_ns pg-sub$i ping -c 5 -i 0.2 -W 2 "$INNER" >"$work/ping$i-$tag" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  cat "$work/ping1-$tag" "$work/ping2-$tag"
  grep -q ' 0% packet loss' "$work/ping1-$tag" && grep -q ' 0% packet loss' "$work/ping2-$tag"
}
check "ping through both tunnels at the same time" ping_both before

# 2. Rekey: subscriber 1 its CHILD_SA (new SPIs, fresh DH), subscriber 2 its IKE_SA.
old_child=$(child_spi pg-sub1)
old_ike=$(ike_spi pg-sub2)
swan pg-sub1 --rekey --child pg >"$work/rekey1.out" 2>&1
swan pg-sub2 --rekey --ike pg >"$work/rekey2.out" 2>&1
rekeyed() {  # rekeyed NS OLD FUNC [TRIES]: waits (TRIES x 0.2 s) until FUNC's value differs from OLD
  local now
  for _ in $(seq 1 "${4:-50}"); do
    now=$($3 "$1")
    [[ -n "$now" && "$now" != "$2" ]] && { echo "$2 -> $now"; swan "$1" --list-sas; return 0; }
    sleep 0.2
  done
  echo "still $2"
  swan "$1" --list-sas
  return 1
}
check "subscriber 1: CHILD_SA rekeyed (new SPI installed)" rekeyed pg-sub1 "$old_child" child_spi
check "subscriber 2: IKE_SA rekeyed (new IKE SPI)" rekeyed pg-sub2 "$old_ike" ike_spi
check "ping through both tunnels after the rekeys" ping_both after
new_sa_used() {  # the pings went through subscriber 1's new CHILD_SA
  local spi
  spi=$(child_spi pg-sub1)
  raw_sas pg-sub1 | grep -o 'state=INSTALLED[^}]*'
  [[ -n "$spi" && "$spi" != "$old_child" ]] &&
    raw_sas pg-sub1 | grep -o 'state=INSTALLED[^}]*' | grep "$spi" | grep -q 'packets-in=[1-9]'
}
check "subscriber 1's pings went through the new CHILD_SA" new_sa_used

# And the rekey forced by the 15 s CHILD_SA lifetime, on both at once.
old_child1=$(child_spi pg-sub1)
old_child2=$(child_spi pg-sub2)
check "subscriber 1: CHILD_SA rekeyed by its short lifetime" rekeyed pg-sub1 "$old_child1" child_spi 150
check "subscriber 2: CHILD_SA rekeyed by its short lifetime" rekeyed pg-sub2 "$old_child2" child_spi 150
check "ping through both tunnels after the lifetime rekeys" ping_both lifetime

# 3. passgate's view: stop it, read its final counters.
kill -INT "$TSHARK_PID" 2>/dev/null
wait "$TSHARK_PID" 2>/dev/null
TSHARK_PID=
stop_passgate
counter_at_least() { grep -Eq "^ +$1 +([0-9]+)$" "$3" && [[ $(sed -nE "s/^ +$1 +([0-9]+)$/\1/p" "$3") -ge $2 ]] || { grep -v '^TELEMETRY' "$3"; return 1; }; }
check "passgate created UDP sessions for both subscribers' 500 and 4500 (>= 4)" counter_at_least sessions_created 4 "$work/passgate.log"
check "passgate translated traffic both ways" bash -c "grep -Eq '^ +translated_outbound +[1-9]' '$work/passgate.log' && grep -Eq '^ +translated_inbound +[1-9]' '$work/passgate.log'"
# The only drop allowed is unsupported_protocol (and the port's "drop nat"
# total of it): pg-lan's bridge sends IGMPv3 reports (joins 224.0.0.106,
# multicast router discovery) for a second after it comes up, and passgate,
# fast to start, sometimes receives one.
check "passgate dropped nothing but the LAN bridge's IGMP" \
  bash -c "! grep -E '^ +drop ' '$work/passgate.log' | grep -Ev '^ +drop (nat|unsupported_protocol) +[0-9]+$'"

# 4. The wire beyond passgate: NAT-T from the one public address, never a subscriber address.
wire() {
  tshark -r "$work/wire.pcapng" -T fields -e ip.src -e udp.srcport -e ip.dst -e udp.dstport 2>/dev/null >"$work/wire.txt"
  sort "$work/wire.txt" | uniq -c
  grep -Eq '^198\.51\.100\.10	[0-9]+	203\.0\.113\.10	4500$' "$work/wire.txt" || { echo "no UDP 4500 from 198.51.100.10"; return 1; }
  [[ $(grep -E '^198\.51\.100\.10	[0-9]+	203\.0\.113\.10	4500$' "$work/wire.txt" | cut -f2 | sort -u | wc -l) -ge 2 ]] ||
    { echo "UDP 4500 from fewer than two source ports"; return 1; }
  ! grep -q '100\.64\.' "$work/wire.txt" || { echo "a subscriber address crossed passgate"; return 1; }
}
check "router sees UDP 4500 from 198.51.100.10 (two ports) and no 100.64 address" wire

echo "1..$n"
[[ $failed -eq 0 ]] || { charon_logs; exit 1; }
