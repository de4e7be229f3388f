#include "support/packet_builder.hpp"

#include <cstring>
#include <fmt/format.h>

#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/parse.hpp"

namespace passgate::testing {

using namespace packet;

namespace {

void put16(Bytes& b, std::size_t off, std::uint16_t v) {
  b[off] = static_cast<std::uint8_t>(v >> 8);
  b[off + 1] = static_cast<std::uint8_t>(v);
}
void put32(Bytes& b, std::size_t off, std::uint32_t v) {
  put16(b, off, static_cast<std::uint16_t>(v >> 16));
  put16(b, off + 2, static_cast<std::uint16_t>(v));
}
std::uint16_t get16(const Bytes& b, std::size_t off) { return static_cast<std::uint16_t>((b[off] << 8) | b[off + 1]); }

// Reference checksum: a plain RFC 1071 sum over big-endian words, written
// independently of lib/packet/checksum.hpp.
std::uint16_t reference_sum(const std::uint8_t* data, std::size_t len, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < len; i += 2) sum += static_cast<std::uint32_t>((data[i] << 8) | data[i + 1]);
  if (len & 1) sum += static_cast<std::uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}
std::uint32_t reference_pseudo(const Bytes& p, std::uint8_t proto, std::size_t l4_len) {
  std::uint32_t s = 0;
  for (int i = 12; i < 20; i += 2) s += get16(p, i);
  return s + proto + static_cast<std::uint32_t>(l4_len);
}

Bytes ip_header(const IpFields& f, std::uint8_t proto, std::size_t payload_len) {
  const std::size_t ihl = 20 + f.options.size();
  Bytes b(ihl + payload_len, 0);
  b[0] = static_cast<std::uint8_t>(0x40 | (ihl / 4));
  put16(b, 2, static_cast<std::uint16_t>(ihl + payload_len));
  put16(b, 4, f.id);
  put16(b, 6, static_cast<std::uint16_t>((f.more_fragments ? 0x2000 : 0) | (f.fragment_offset_bytes / 8)));
  b[8] = f.ttl;
  b[9] = proto;
  std::memcpy(&b[12], &f.src.raw, 4);
  std::memcpy(&b[16], &f.dst.raw, 4);
  std::copy(f.options.begin(), f.options.end(), b.begin() + 20);
  return b;
}
void finish_ip(Bytes& b) {
  const std::size_t ihl = (b[0] & 0x0f) * 4u;
  put16(b, 10, 0);
  put16(b, 10, static_cast<std::uint16_t>(~reference_sum(b.data(), ihl)));
}

}  // namespace

Bytes udp_packet(IpFields ip, std::uint16_t sport, std::uint16_t dport, const Bytes& payload, bool zero_csum) {
  Bytes b = ip_header(ip, ip_proto::udp, 8 + payload.size());
  const std::size_t o = b.size() - 8 - payload.size();
  put16(b, o, sport);
  put16(b, o + 2, dport);
  put16(b, o + 4, static_cast<std::uint16_t>(8 + payload.size()));
  std::copy(payload.begin(), payload.end(), b.begin() + o + 8);
  if (!zero_csum) {
    std::uint16_t c = static_cast<std::uint16_t>(
        ~reference_sum(&b[o], b.size() - o, reference_pseudo(b, ip_proto::udp, b.size() - o)));
    put16(b, o + 6, c == 0 ? 0xffff : c);
  }
  finish_ip(b);
  return b;
}

Bytes tcp_packet(IpFields ip, std::uint16_t sport, std::uint16_t dport, std::uint8_t flags, const Bytes& payload,
                 std::uint32_t seq, std::uint32_t ack) {
  Bytes b = ip_header(ip, ip_proto::tcp, 20 + payload.size());
  const std::size_t o = b.size() - 20 - payload.size();
  put16(b, o, sport);
  put16(b, o + 2, dport);
  put32(b, o + 4, seq);
  put32(b, o + 8, ack);
  b[o + 12] = 5 << 4;
  b[o + 13] = flags;
  put16(b, o + 14, 65535);
  std::copy(payload.begin(), payload.end(), b.begin() + o + 20);
  put16(b, o + 16,
        static_cast<std::uint16_t>(~reference_sum(&b[o], b.size() - o, reference_pseudo(b, ip_proto::tcp, b.size() - o))));
  finish_ip(b);
  return b;
}

Bytes icmp_echo(IpFields ip, std::uint8_t type, std::uint16_t id, std::uint16_t seq, const Bytes& payload) {
  Bytes b = ip_header(ip, ip_proto::icmp, 8 + payload.size());
  const std::size_t o = b.size() - 8 - payload.size();
  b[o] = type;
  put16(b, o + 4, id);
  put16(b, o + 6, seq);
  std::copy(payload.begin(), payload.end(), b.begin() + o + 8);
  put16(b, o + 2, static_cast<std::uint16_t>(~reference_sum(&b[o], b.size() - o)));
  finish_ip(b);
  return b;
}

Bytes icmp_error(IpFields ip, std::uint8_t type, std::uint8_t code, const Bytes& quoted, std::size_t quote_bytes) {
  const std::size_t q = quote_bytes == 0 ? quoted.size() : std::min(quote_bytes, quoted.size());
  Bytes b = ip_header(ip, ip_proto::icmp, 8 + q);
  const std::size_t o = b.size() - 8 - q;
  b[o] = type;
  b[o + 1] = code;
  std::copy(quoted.begin(), quoted.begin() + static_cast<std::ptrdiff_t>(q), b.begin() + o + 8);
  put16(b, o + 2, static_cast<std::uint16_t>(~reference_sum(&b[o], b.size() - o)));
  finish_ip(b);
  return b;
}

Bytes esp_packet(IpFields ip, std::uint32_t spi, std::uint32_t seq) {
  Bytes b = ip_header(ip, ip_proto::esp, 8 + 32);
  const std::size_t o = b.size() - 40;
  put32(b, o, spi);
  put32(b, o + 4, seq);
  for (std::size_t i = o + 8; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 7);
  finish_ip(b);
  return b;
}

Bytes gre_packet(IpFields ip, std::uint8_t version, bool key, std::uint32_t key_value, bool seq) {
  const std::size_t hdr = 4 + (key ? 4 : 0) + (seq ? 4 : 0);
  Bytes b = ip_header(ip, ip_proto::gre, hdr + 16);
  const std::size_t o = b.size() - hdr - 16;
  b[o] = static_cast<std::uint8_t>((key ? 0x20 : 0) | (seq ? 0x10 : 0));
  b[o + 1] = version;
  put16(b, o + 2, version == 1 ? 0x880b : 0x0800);
  if (key) put32(b, o + 4, key_value);
  finish_ip(b);
  return b;
}

Bytes pptp_message(std::uint16_t type, std::uint16_t length, const std::vector<std::pair<unsigned, std::uint16_t>>& fields) {
  Bytes m(length, 0);
  put16(m, 0, length);
  m[3] = 1;  // control message
  m[4] = 0x1a, m[5] = 0x2b, m[6] = 0x3c, m[7] = 0x4d;  // magic cookie
  put16(m, 8, type);
  for (const auto& [off, v] : fields) put16(m, off, v);
  return m;
}

std::vector<Bytes> fragment(const Bytes& packet, std::size_t chunk) {
  const std::size_t ihl = (packet[0] & 0x0f) * 4u;
  const std::size_t total = get16(packet, 2);
  std::vector<Bytes> out;
  for (std::size_t off = 0; off < total - ihl; off += chunk) {
    const std::size_t len = std::min(chunk, total - ihl - off);
    Bytes f(packet.begin(), packet.begin() + static_cast<std::ptrdiff_t>(ihl));
    f.insert(f.end(), packet.begin() + static_cast<std::ptrdiff_t>(ihl + off),
             packet.begin() + static_cast<std::ptrdiff_t>(ihl + off + len));
    put16(f, 2, static_cast<std::uint16_t>(ihl + len));
    const bool more = off + len < total - ihl;
    put16(f, 6, static_cast<std::uint16_t>((more ? 0x2000 : 0) | (off / 8)));
    finish_ip(f);
    out.push_back(std::move(f));
  }
  return out;
}

namespace {
std::string transport_problems(const Bytes& p, std::size_t ihl, std::size_t total, std::uint8_t proto,
                               const char* where) {
  const std::size_t l4 = total - ihl;
  if (proto == ip_proto::tcp && l4 >= 20) {
    if (reference_sum(&p[ihl], l4, reference_pseudo(p, proto, l4)) != 0xffff) return fmt::format("{}TCP checksum; ", where);
  } else if (proto == ip_proto::udp && l4 >= 8) {
    if (get16(p, ihl + 6) != 0 && reference_sum(&p[ihl], l4, reference_pseudo(p, proto, l4)) != 0xffff)
      return fmt::format("{}UDP checksum; ", where);
  } else if (proto == ip_proto::icmp && l4 >= 8) {
    if (reference_sum(&p[ihl], l4) != 0xffff) return fmt::format("{}ICMP checksum; ", where);
  }
  return {};
}
}  // namespace

std::string checksum_problems(const Bytes& p) {
  std::string problems;
  if (p.size() < 20) return "shorter than an IPv4 header";
  const std::size_t ihl = (p[0] & 0x0f) * 4u;
  const std::size_t total = get16(p, 2);
  if (total > p.size() || ihl < 20 || total < ihl) return "bad lengths";
  if (reference_sum(p.data(), ihl) != 0xffff) problems += "IPv4 header checksum; ";
  const bool fragmented = (get16(p, 6) & 0x3fff) != 0;
  if (fragmented) return problems;  // transport checksums span the datagram
  problems += transport_problems(p, ihl, total, p[9], "");
  // ICMP error: the embedded header, and its transport checksum if whole.
  if (p[9] == ip_proto::icmp && total >= ihl + 8 + 20 && is_icmp_error_type(p[ihl])) {
    Bytes inner(p.begin() + static_cast<std::ptrdiff_t>(ihl + 8), p.begin() + static_cast<std::ptrdiff_t>(total));
    const std::size_t iihl = (inner[0] & 0x0f) * 4u;
    if (reference_sum(inner.data(), iihl) != 0xffff) problems += "embedded IPv4 header checksum; ";
    if (get16(inner, 2) == inner.size()) problems += transport_problems(inner, iihl, inner.size(), inner[9], "embedded ");
  }
  return problems;
}

be32 ip_src(const Bytes& p) { return be32{load<std::uint32_t>(&p[12])}; }
be32 ip_dst(const Bytes& p) { return be32{load<std::uint32_t>(&p[16])}; }
unsigned ihl(const Bytes& p) { return (p[0] & 0x0f) * 4u; }
std::uint16_t l4_sport(const Bytes& p) { return get16(p, ihl(p) + (p[9] == ip_proto::icmp ? 4 : 0)); }
std::uint16_t l4_dport(const Bytes& p) { return get16(p, ihl(p) + (p[9] == ip_proto::icmp ? 4 : 2)); }

}  // namespace passgate::testing
