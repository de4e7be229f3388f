# The preamble every end-to-end script shares. Source it first, with the
# script's arguments:
#   source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
#   e2e_require_root                 # TAP skip (exit 77) unless root
#   e2e_require TOOL...              # TAP skip unless every TOOL is installed
#   e2e_start NAME                   # $work, the EXIT trap, the TAP helpers
# It sets here, repo, PY, TOOL (net_tool.py), PASSGATE ($1) and CTL ($2 when
# given), and sources topology.sh (namespaces, start_passgate,
# stop_passgate). One trap tears everything down even when a check fails:
# the script's own e2e_stop_extras first (define it for processes of its
# own), then passgate, then the namespaces, then $work unless KEEP is set.
# A script that builds no namespaces sets E2E_NAMESPACES=0 before e2e_start.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# Debian's interpreter: the one with python3-scapy (python3 on PATH may be
# another).
PY=/usr/bin/python3
TOOL="$PY $here/net_tool.py"
PASSGATE="$(realpath "${1:?usage: $0 PASSGATE_BINARY [PASSGATECTL_BINARY]}")"
CTL=
[[ $# -ge 2 ]] && CTL="$(realpath "$2")"
source "$here/topology.sh"

e2e_require_root() {
  [[ $(id -u) -eq 0 ]] || { echo "1..0 # SKIP needs root (network namespaces, DPDK)"; exit 77; }
}

e2e_require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool not installed (scripts/install-deps.sh)"; exit 77; }
  done
}

e2e_start() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/passgate-$1.XXXXXX")"
  trap e2e_cleanup EXIT
  source "$here/tap.sh"
}

e2e_cleanup() {
  if declare -F e2e_stop_extras >/dev/null; then e2e_stop_extras; fi
  stop_passgate
  [[ "${E2E_NAMESPACES:-1}" == 0 ]] || topo_down
  if [[ -n "${KEEP:-}" ]]; then echo "# work directory kept: $work"; else rm -rf "$work"; fi
}

# all_mbufs_back LOG: passgate's final report says every buffer is back in
# its pool (the line it prints on a clean stop).
all_mbufs_back() {
  grep -E '^mbufs:' "$1"
  local free total
  read -r free total < <(sed -nE 's/^mbufs: ([0-9]+) of ([0-9]+) free$/\1 \2/p' "$1")
  [[ -n "$free" && "$free" == "$total" ]]
}
