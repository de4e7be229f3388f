#!/usr/bin/env bash
# Installs every Debian 12 package passgate needs to build, test, fuzz and
# benchmark. Idempotent: packages already present are skipped, and apt is
# only touched when something is missing. Needs root.
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config meson ninja-build clang lld
  libdpdk-dev dpdk dpdk-dev libcivetweb-dev
  libboost-program-options-dev libfmt-dev libyaml-cpp-dev
  # tests, sanitizers, fuzzing, benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev
  # end-to-end peers and tools
  iproute2 iputils-ping iputils-tracepath traceroute ethtool tshark iperf3 netcat-openbsd python3 python3-scapy nftables curl prometheus
  # NAT event collectors (IPFIX: nfcapd/nfdump; RFC 5424: rsyslogd) and result plots
  nfdump rsyslog python3-matplotlib
  # BIRD 2: the routing daemon beside passgate (issue 15; conf/bird/)
  bird2
  # strongSwan (IKEv2 + NAT-T end to end; userspace ESP via kernel-libipsec)
  strongswan-charon strongswan-swanctl libcharon-extra-plugins
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer once, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
