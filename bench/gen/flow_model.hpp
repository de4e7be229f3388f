// The traffic model of passgate-gen: a flow is a number f in [0, N*M) and
// everything about it (addresses, ports, SPI, protocol) is computed from f,
// so 16M flows need no per-flow table.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace pgen {

enum class Proto : std::uint8_t { udp, tcp, icmp, esp, gre, natt };
constexpr std::array<const char*, 6> proto_names{"udp", "tcp", "icmp", "esp", "gre", "natt"};

constexpr std::uint8_t ip_proto_icmp = 1, ip_proto_tcp = 6, ip_proto_udp = 17, ip_proto_gre = 47, ip_proto_esp = 50;
constexpr std::uint8_t tcp_syn = 0x02, tcp_ack = 0x10;
constexpr unsigned eth_len = 14, ipv4_len = 20, stamp_len = 16;
constexpr std::uint32_t stamp_magic = 0x50474e31;  // "PGN1"
// The server's ESP SPI is the client's with the top bit flipped: the outside
// can answer any SA without state, and the inside can check the answer.
constexpr std::uint32_t esp_reply_flip = 0x80000000u;
constexpr std::uint16_t natt_port = 4500;  // RFC 3948

inline unsigned l4_header_len(Proto p) {
  switch (p) {
    case Proto::udp:
    case Proto::natt:
    case Proto::icmp:
    case Proto::esp: return 8;  // UDP, ICMP echo, ESP SPI + sequence
    case Proto::tcp: return 20;
    case Proto::gre: return 4;  // RFC 2784 without checksum
  }
  return 8;
}
inline std::uint8_t ip_proto(Proto p) {
  switch (p) {
    case Proto::udp:
    case Proto::natt: return ip_proto_udp;
    case Proto::tcp: return ip_proto_tcp;
    case Proto::icmp: return ip_proto_icmp;
    case Proto::esp: return ip_proto_esp;
    case Proto::gre: return ip_proto_gre;
  }
  return ip_proto_udp;
}
// The protocol of an IP protocol number we generate; false for any other.
inline bool proto_of_ip(std::uint8_t number, Proto& proto) {
  switch (number) {
    case ip_proto_udp: proto = Proto::udp; return true;
    case ip_proto_tcp: proto = Proto::tcp; return true;
    case ip_proto_icmp: proto = Proto::icmp; return true;
    case ip_proto_esp: proto = Proto::esp; return true;
    case ip_proto_gre: proto = Proto::gre; return true;
    default: return false;
  }
}

struct FlowTuple {
  std::uint32_t src, dst;  // host order
  std::uint16_t sport, dport;  // ICMP: sport is the echo identifier
  std::uint32_t spi;
  Proto proto;
};

// N subscribers x M flows. Subscribers are interleaved (flow f belongs to
// subscriber f mod N), so consecutive packets come from different
// subscribers and spread over the DUT's tables as real traffic does.
struct FlowModel {
  std::uint32_t subscribers = 1000;
  std::uint64_t flows_per_subscriber = 1;
  std::uint32_t subscriber_base = 0;  // first subscriber address, host order
  std::uint32_t servers = 65536;
  std::uint32_t server_base = 0;
  std::uint16_t udp_port = 5001, tcp_port = 80;
  std::array<Proto, 100> mix{};  // protocol per percent

  [[nodiscard]] std::uint64_t flows() const { return std::uint64_t{subscribers} * flows_per_subscriber; }

  [[nodiscard]] Proto proto_of(std::uint64_t f) const {
    // A multiplicative hash spreads the mix evenly over flows and
    // subscribers, whatever N and M are.
    return mix[(f * 0x9E3779B97F4A7C15ull >> 32) % 100];
  }

  [[nodiscard]] FlowTuple tuple(std::uint64_t f) const {
    FlowTuple t{};
    const std::uint64_t sub = f % subscribers;
    const std::uint64_t j = f / subscribers;
    t.proto = proto_of(f);
    t.src = subscriber_base + static_cast<std::uint32_t>(sub);
    // Source ports 1024..65023; beyond 64000 flows per subscriber the server
    // moves on, so (source, port, destination) stays unique for any f.
    t.sport = static_cast<std::uint16_t>(1024 + j % 64000);
    t.dst = server_base + static_cast<std::uint32_t>((f + j / 64000) % servers);
    switch (t.proto) {
      case Proto::udp: t.dport = udp_port; break;
      case Proto::tcp: t.dport = tcp_port; break;
      case Proto::icmp: t.dport = 0; break;
      case Proto::natt: t.sport = t.dport = natt_port; break;
      case Proto::esp:
      case Proto::gre:
        // No ports: the DUT tells tunnels apart by (inside address, server),
        // so every such flow gets a server of its own while there are enough.
        t.dst = server_base + static_cast<std::uint32_t>(f % servers);
        break;
    }
    t.spi = 0x01000000u + static_cast<std::uint32_t>(f & 0x00ffffffu);
    return t;
  }
};

// "udp:70,tcp:20,icmp:5": weights as shares of the total, rounded to whole
// percent, into one protocol per percent.
bool parse_mix(const std::string& text, std::array<Proto, 100>& mix, std::string& error);

// The mix as a JSON object body ("udp": 70, "tcp": 30).
std::string mix_json(const std::array<Proto, 100>& mix);

}  // namespace pgen
