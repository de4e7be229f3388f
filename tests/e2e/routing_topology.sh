# The routed topology of issue 15 (docs/issue15-routing-plan.md section 4):
# two passgate boxes between an aggregation router that spreads subscribers
# over them by ECMP on the source address, and an upstream router that
# learns each box's pool. Source it after common.sh; needs root, iproute2
# and ethtool.
#
#   rt-sub  100.64.0.11-.26/24 (16 subscribers), 100.64.9.11/24 (hog)
#     | eth0 -- agg-sub
#   rt-agg  100.64.0.1, 100.64.9.1 | agg-lan 100.127.0.254 (BIRD, ECMP)
#     |
#   rt-lan  bridge br0: lan-agg, lan-a, lan-b                    100.127.0.0/24
#     |-- rt-a: pg-in [passgate A] pg-out, kernel "inside" 100.127.0.1 / "outside" 198.51.100.1, BIRD A
#     '-- rt-b: pg-in [passgate B] pg-out, kernel "inside" 100.127.0.2 / "outside" 198.51.100.2, BIRD B
#   rt-wan  bridge br0: wan-a, wan-b, wan-up                     198.51.100.0/24
#     |
#   rt-up   up-wan 198.51.100.254 | up-srv 203.0.113.1 (BIRD)
#     |
#   rt-srv  203.0.113.10, 203.0.113.11
#
# Box A's pools are 192.0.2.0/29 (main .1-.6, tiny .7), box B's 192.0.2.8/29
# (main .9-.14, tiny .15). The passgate ports pg-in/pg-out are DPDK's
# (af_packet); "inside"/"outside" are their kernel interfaces (exception).

PG_NS=(rt-sub rt-agg rt-lan rt-a rt-b rt-wan rt-up rt-srv)
RT_SUBS=()
for i in $(seq 11 26); do RT_SUBS+=("100.64.0.$i"); done
RT_HOG=100.64.9.11
RT_SERVERS=(203.0.113.10 203.0.113.11)
RT_AGG=100.127.0.254
RT_UP=198.51.100.254
declare -A RT_INSIDE=([a]=100.127.0.1 [b]=100.127.0.2)
declare -A RT_OUTSIDE=([a]=198.51.100.1 [b]=198.51.100.2)
declare -A RT_POOL=([a]=192.0.2.0/29 [b]=192.0.2.8/29)
# A public address of each box's pool, as a regex on "seen ADDRESS:PORT".
declare -A RT_POOL_RE=([a]='192\.0\.2\.[1-7]' [b]='192\.0\.2\.(9|1[0-5])')

# The bridge-less links and both bridges; every end up, no offloads (veth
# leaves checksums partial otherwise; DPDK's af_packet does not finish them).
rt_topo_up() {
  topo_down
  local ns ifc box
  for ns in "${PG_NS[@]}"; do
    ip netns add "$ns"
    pg_ns "$ns" ip link set lo up
    pg_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  for ns in rt-lan rt-wan; do
    pg_ns "$ns" ip link add br0 type bridge mcast_snooping 0
    pg_ns "$ns" ip link set br0 up
  done
  ip link add agg-sub netns rt-agg type veth peer name eth0 netns rt-sub
  ip link add agg-lan netns rt-agg type veth peer name lan-agg netns rt-lan
  ip link add up-wan netns rt-up type veth peer name wan-up netns rt-wan
  ip link add up-srv netns rt-up type veth peer name eth0 netns rt-srv
  for box in a b; do
    ip link add pg-in netns "rt-$box" type veth peer name "lan-$box" netns rt-lan
    ip link add pg-out netns "rt-$box" type veth peer name "wan-$box" netns rt-wan
  done
  for ifc in lan-agg lan-a lan-b; do
    pg_ns rt-lan ip link set "$ifc" master br0 up
    pg_no_offload rt-lan "$ifc"
  done
  for ifc in wan-up wan-a wan-b; do
    pg_ns rt-wan ip link set "$ifc" master br0 up
    pg_no_offload rt-wan "$ifc"
  done

  # Subscribers: 16 addresses and the hog on one link, default via rt-agg.
  local a
  for a in "${RT_SUBS[@]}"; do pg_ns rt-sub ip addr add "$a/24" dev eth0; done
  pg_ns rt-sub ip addr add "$RT_HOG/24" dev eth0
  pg_ns rt-sub ip link set eth0 up
  pg_ns rt-sub ip route add default via 100.64.0.1
  pg_no_offload rt-sub eth0

  # Aggregation: ECMP over the boxes, hashed on the source address only
  # (policy 3 = custom, fields 0x0001 = source IP), a fixed seed where the
  # kernel has one (6.11+) so that the spread repeats between runs.
  pg_ns rt-agg ip addr add 100.64.0.1/24 dev agg-sub
  pg_ns rt-agg ip addr add 100.64.9.1/24 dev agg-sub
  pg_ns rt-agg ip addr add "$RT_AGG/24" dev agg-lan
  pg_ns rt-agg sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=3 \
    net.ipv4.fib_multipath_hash_fields=0x0001
  if pg_ns rt-agg test -e /proc/sys/net/ipv4/fib_multipath_hash_seed; then
    pg_ns rt-agg sysctl -qw net.ipv4.fib_multipath_hash_seed=2026 || true
  fi
  for ifc in agg-sub agg-lan; do
    pg_ns rt-agg ip link set "$ifc" up
    pg_no_offload rt-agg "$ifc"
  done

  # Upstream and servers.
  pg_ns rt-up ip addr add "$RT_UP/24" dev up-wan
  pg_ns rt-up ip addr add 203.0.113.1/24 dev up-srv
  pg_ns rt-up sysctl -qw net.ipv4.ip_forward=1
  for ifc in up-wan up-srv; do
    pg_ns rt-up ip link set "$ifc" up
    pg_no_offload rt-up "$ifc"
  done
  for a in "${RT_SERVERS[@]}"; do pg_ns rt-srv ip addr add "$a/24" dev eth0; done
  pg_ns rt-srv ip link set eth0 up
  pg_ns rt-srv ip route add default via 203.0.113.1
  pg_no_offload rt-srv eth0

  # The boxes: passgate's ports up without addresses; the kernel there
  # carries control traffic only (plan 1.6).
  for box in a b; do
    for ifc in pg-in pg-out; do
      pg_ns "rt-$box" ip link set "$ifc" up
      pg_no_offload "rt-$box" "$ifc"
    done
    pg_ns "rt-$box" sysctl -qw net.ipv4.ip_forward=0
  done
}

# rt_passgate_config BOX: box BOX's passgate.yaml on stdout.
rt_passgate_config() {
  local box=$1 first last tiny
  if [[ $box == a ]]; then first=1 last=6 tiny=7; else first=9 last=14 tiny=15; fi
  cat <<YAML
dataplane:
  eal: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix", "rt-$box",
        "--lcores", "0@0,1@1", "--log-level", "lib.eal:error", "--log-level", "pmd.net.tap:critical"]
  mbufs: auto
ports:
  - name: inside
    device: "net_af_packet0,iface=pg-in"
    role: inside
    address: ${RT_INSIDE[$box]}/24
    routes:
      - {prefix: 100.64.0.0/16, via: $RT_AGG}
    exception: {allow: [$RT_AGG/32]}
  - name: outside
    device: "net_af_packet1,iface=pg-out"
    role: outside
    address: ${RT_OUTSIDE[$box]}/24
    gateway: $RT_UP
    exception: {allow: [$RT_UP/32]}
nat:
  max_sessions: 16384
  max_subscribers: 256
  pools:
    - name: main
      subscribers: [100.64.0.0/24]
      public: [192.0.2.$first-192.0.2.$last]
      ports: 1024-65535
      block_size: 256
    - name: tiny
      subscribers: [100.64.9.0/24]
      public: [192.0.2.$tiny]
      ports: 1024-65535
      block_size: 32768
      max_blocks_per_subscriber: 1
# passgate tells BIRD when to announce the box (the shipped conf/routing.yaml's
# choices, with test timers): a full pool withdraws only the default toward
# the aggregation router, anything else both.
health:
  daemon: {socket: $work/bird-$box.ctl, protocols: [announce_pools, announce_default]}
  check_ms: 100
  hold_down_s: 2
  pool_check_ms: 300
  pool_exhausted_protocols: [announce_default]
  stop_withdraw_ms: 500
control:
  prometheus: 9469
YAML
}

# rt_sed IN OUT EXPR...: OUT is IN with each sed EXPR applied; fails, naming
# the expression, when one of them matches nothing (the shipped file moved
# away from what the test expects: fix the test with it).
rt_sed() {
  local in=$1 out=$2 e
  shift 2
  cp "$in" "$out"
  for e in "$@"; do
    # Each EXPR is one s command: its "p" flag prints the lines it matched.
    if [[ -z "$(sed -n -e "${e}p" "$out")" ]]; then
      echo "rt_sed: '$e' matches nothing in $in" >&2
      return 1
    fi
    sed -i -e "$e" "$out"
  done
}

# The BIRD configurations, each derived from its shipped file in conf/bird/
# (so the shipped files are the tested ones) with the test's addresses,
# prefixes and timers: BFD 100 ms x 5 (500 ms detection: two shared CPUs must
# not flap it), error wait 1 to 10 s (recovery in seconds, plan 2), a log
# file instead of syslog, with protocol states and events in it
# (RT_BIRD_DEBUG=all for every message and route).
# rt_bird_config WHO LOG: WHO is a, b, agg or up; the configuration on stdout.
rt_bird_config() {
  local who=$1 log=$2 out
  out=$(mktemp)
  local common=(
    "s|^log syslog all;|log \"$log\" all;\ndebug protocols ${RT_BIRD_DEBUG:-{ states, events \}};|"
    's/multiplier 3;/multiplier 5;/'
    's/error wait time 5, 60;/error wait time 1, 10;/'
  )
  case $who in
    a|b)
      local id=${RT_OUTSIDE[$who]} inside=${RT_INSIDE[$who]}
      rt_sed "$repo/conf/bird/passgate.conf" "$out" "${common[@]}" \
        "s/^router id 198\.51\.100\.1;/router id $id;/" \
        "s/local 198\.51\.100\.1 as/local $id as/" \
        "s/local 100\.127\.0\.1 as/local $inside as/" \
        "s|route 198\.51\.100\.8/29 blackhole|route ${RT_POOL[$who]} blackhole|" || { rm -f "$out"; return 1; }
      ;;
    agg)
      rt_sed "$repo/conf/bird/aggregation-example.conf" "$out" "${common[@]}" || { rm -f "$out"; return 1; }
      ;;
    up)
      rt_sed "$repo/conf/bird/upstream-example.conf" "$out" "${common[@]}" \
        's|net ~ \[ 198\.51\.100\.0/24{24,32} \]|net ~ [ 192.0.2.0/24{24,32} ]|' || { rm -f "$out"; return 1; }
      ;;
  esac
  cat "$out"
  rm -f "$out"
}
