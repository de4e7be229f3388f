// RSS steering arithmetic: which worker a packet reaches, and which public
// ports a worker owns, so that replies reach the worker holding the session
// without a handoff (issue 7). No DPDK here: the Toeplitz hash is computed
// bit-exactly with rte_softrss (checked by tests/unit/rss_ownership_test.cpp),
// so lib/nat can use the ownership arithmetic too.
//
// Theory of operation
// -------------------
// Toeplitz: the key is a 320-bit string k[0..319] (k[0] = MSB of key byte
// 0), the input a bit string d[0..] (d[0] = MSB of the first input word).
// hash = XOR over set input bits i of the 32-bit window k[i..i+31], so
// hash bit j (0 = LSB) = XOR_i d[i] & k[i + 31 - j]. It is linear over
// GF(2): hash(A, p) = hash(A, 0) ^ hash(0, p).
// The NIC sends a packet to queue reta[hash & (reta_size - 1)]. We install
// reta[i] = i % W, so with W a power of two the queue is hash & (W - 1):
// only the low b = log2(W) hash bits matter.
//
// Outside port (RSS types L3_DST_ONLY | L4_DST_ONLY): if the port's bit q
// sits at input index P - q (P = index of the port's LSB), hash bit j takes
// port bit q through key bit P + 31 - q - j, a function of s = q + j only
// (a Hankel matrix). Setting k[P + 31 - s] = 0 for s in [b, b + 14] cuts
// every port bit q >= b out of the low b hash bits; setting k[P + 32 - b] = 1
// (s = b - 1) makes the remaining b x b block anti-triangular with ones on
// its anti-diagonal, hence invertible. So hash_low(A, p) = g(A) ^ M(p % W)
// with M a bijection, and worker w owns on address A exactly the ports
//   p % W == M^-1(w ^ g(A))         (port_residue(A, w))
// a comb of stride W: 65536 / W ports of every address, one residue each.
// A port block is then first/last/step = W (RFC 8158 portRangeStepSize).
// At most 16 key bits are forced; the rest come from a well-mixed base key.
//
// W not a power of two: reta[i] = i % W would depend on all log2(reta_size)
// index bits, so the RETA is filled as reta[i] = (i % S) % W for a power of
// two S (the stride, default reta_size) and the construction is made with
// b = log2(S): a worker owns a set of residues modulo S (S / W of them,
// rounded up or down), each a comb of stride S holding 65536 / S ports.
// Larger S balances better (shares differ by one residue, 1/S of the ports),
// smaller S gives longer combs (a 512-port block fits in one residue only if
// S <= 128). stride() says which case holds.
//
// Inside port (RSS type L3_SRC_ONLY): input = the source address only, so all
// flows of a subscriber hash alike (subscriber affinity). The inside key is
// a well-mixed key with b - 1 bits zeroed and one set so that the low b
// address bits map bijectively onto the low b hash bits: every aligned block
// of W consecutive subscriber addresses lands on every worker exactly once
// (of S addresses on every RETA residue once, when W is not a power of two),
// whatever the higher bits mix in.
//
// Input layout. The hash input is given here as rte_softrss words (host
// order). For the outside port two layouts are supported because NICs differ
// and DPDK documents none of them for the *_ONLY types:
//   packed    {dst_addr, dst_port << 16}: the selected fields concatenated in
//             header order (Microsoft's RSS definition with only the selected
//             fields), P = 47;
//   in_place  {0, dst_addr, dst_port}: the IPv4 4-tuple positions
//             {src, dst, sport << 16 | dport} with unselected fields zero, P = 95.
// Which one a PMD uses must be checked on the hardware: compare outside_hash()
// with the mbuf's hash.rss for received packets (the dataplane should do so
// at start-up and fall back to handoff if neither layout matches).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "packet/byte_order.hpp"

namespace passgate::steering {

using packet::be32;

inline constexpr std::size_t rss_key_size = 40;
using RssKey = std::array<std::uint8_t, rss_key_size>;

// The key of Microsoft's RSS verification suite, the default of many PMDs.
inline constexpr RssKey microsoft_rss_key = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

// A deterministic pseudo-random key (splitmix64 of the seed).
RssKey rss_key_from_seed(std::uint64_t seed);

// Key bit k (0 = most significant bit of byte 0).
[[nodiscard]] constexpr bool key_bit(const RssKey& key, unsigned k) {
  return (key[k / 8] >> (7 - k % 8)) & 1u;
}
constexpr void set_key_bit(RssKey& key, unsigned k, bool v) {
  auto mask = static_cast<std::uint8_t>(0x80u >> (k % 8));
  key[k / 8] = static_cast<std::uint8_t>(v ? (key[k / 8] | mask) : (key[k / 8] & ~mask));
}

// Reference Toeplitz hash over host-order 32-bit words, bit-exact with
// DPDK's rte_softrss(words, n, key) (n <= 9). Slow; for set-up and tests.
std::uint32_t toeplitz_hash(const RssKey& key, std::span<const std::uint32_t> words);

enum class OutsideLayout : std::uint8_t { packed, in_place };
const char* to_string(OutsideLayout l);

// The hash input of an outside packet, as rte_softrss takes it.
struct HashInput {
  std::array<std::uint32_t, 3> words{};
  unsigned len = 0;
  [[nodiscard]] std::span<const std::uint32_t> span() const { return {words.data(), len}; }
};
HashInput outside_input(OutsideLayout l, be32 dst, std::uint16_t dst_port);
// An outside packet without ports (ICMP, ESP, GRE, non-first fragments):
// the NIC hashes the destination address only (L3_DST_ONLY).
HashInput outside_input_portless(OutsideLayout l, be32 dst);
// An inside packet: the source address only (L3_SRC_ONLY), same in both layouts.
HashInput inside_input(be32 src);

// Input index (0 = MSB of the first word) of the destination port's LSB.
constexpr unsigned port_lsb_index(OutsideLayout l) { return l == OutsideLayout::packed ? 47 : 95; }

// The key construction described above, exposed for tests and tools:
// force the bits that make the low `bits` hash bits depend on the port only
// through its low `bits` bits, bijectively.
RssKey make_port_comb_key(RssKey base, OutsideLayout l, unsigned bits);
// Force the bits that make the low `bits` hash bits of an address-only input
// a bijection of the address's low `bits` bits (plus the higher bits' mix).
RssKey make_address_spread_key(RssKey base, unsigned bits);

struct SteeringParams {
  unsigned workers = 1;
  unsigned reta_size = 512;  // the NIC's RETA size (rte_eth_dev_info.reta_size)
  RssKey outside_base_key = microsoft_rss_key;
  RssKey inside_base_key = rss_key_from_seed(0x7061737367617465);  // "passgate"
  OutsideLayout outside_layout = OutsideLayout::packed;
  // One key for both ports (a NIC with a single key, or one port carrying
  // both directions): the inside uses the outside key, with its bits forced too.
  bool shared_key = false;
  // Ownership modulus S: 0 = W if W is a power of two, else reta_size.
  // Otherwise a power of two with W <= S <= reta_size.
  unsigned stride = 0;
  // Key of worker_of_server(): any value, the same for every worker (it is
  // part of the one RssSteering they all read).
  std::uint64_t server_key = 0x7670'6e73'6572'7672;  // "vpnservr"
};

enum class SteeringError : std::uint8_t {
  none,
  no_workers,
  reta_size_not_power_of_two,  // also 0, or above 65536
  more_workers_than_reta_entries,
  bad_stride,  // not a power of two, below the worker count or above reta_size
  keys_conflict,  // cannot happen with the documented layouts; checked anyway
};
const char* to_string(SteeringError e);

class RssSteering {
 public:
  // Builds the keys, the RETA and the lookup tables. No allocation after this.
  static std::optional<RssSteering> make(const SteeringParams& p, SteeringError* error = nullptr);

  // --- what to install on the NIC -----------------------------------------
  [[nodiscard]] const RssKey& outside_key() const { return outside_key_; }
  [[nodiscard]] const RssKey& inside_key() const { return inside_key_; }
  [[nodiscard]] std::span<const std::uint16_t> reta() const { return reta_; }  // reta[i] = (i % S) % W
  [[nodiscard]] unsigned workers() const { return workers_; }
  [[nodiscard]] unsigned reta_size() const { return static_cast<unsigned>(reta_.size()); }
  [[nodiscard]] OutsideLayout outside_layout() const { return layout_; }

  // Ownership modulus S: by default W when W is a power of two (one residue
  // per worker), else reta_size (several residues per worker).
  [[nodiscard]] unsigned stride() const { return stride_mask_ + 1; }
  [[nodiscard]] bool one_residue_per_worker() const { return stride() == workers_; }

  // --- predictions (table-driven, a few ns; no rte_softrss per packet) -------
  // The 32-bit hash the NIC reports in mbuf hash.rss, for self-checks.
  [[nodiscard]] std::uint32_t outside_hash(be32 dst, std::uint16_t dst_port) const {
    return address_hash(dst) ^ port_hash_[0][dst_port >> 8] ^ port_hash_[1][dst_port & 0xff];
  }
  [[nodiscard]] std::uint32_t outside_hash_portless(be32 dst) const { return address_hash(dst); }
  [[nodiscard]] std::uint32_t inside_hash(be32 src) const {
    return table_hash(inside_hash_, src);
  }
  [[nodiscard]] unsigned worker_of_hash(std::uint32_t hash) const { return reta_[hash & reta_mask_]; }
  [[nodiscard]] unsigned worker_of_outside(be32 dst, std::uint16_t dst_port) const {
    return worker_of_hash(outside_hash(dst, dst_port));
  }
  // ICMP, ESP, GRE and fragments to a public address: one fixed worker per
  // address, the owner of residue 0 (the port-0 hash). Usually needs handoff.
  [[nodiscard]] unsigned worker_of_outside_portless(be32 dst) const {
    return worker_of_hash(outside_hash_portless(dst));
  }
  [[nodiscard]] unsigned worker_of_subscriber(be32 src) const { return worker_of_hash(inside_hash(src)); }
  // VPN passthrough (ESP, GRE, PPTP control) by the remote server's address:
  // outbound by the destination, inbound by the source. ESP SPI learning
  // (per public address and server), PPTP calls (Call IDs per server) and
  // GRE v0 tunnels (per inside address and server) are all keyed by the
  // server, so every SA, call or tunnel that can interfere with another
  // meets on one worker, while different servers spread over the workers.
  // (By public address would keep learning correct too, but an outbound
  // packet does not carry it: the engine chooses it.) No NIC hashes this:
  // inbound ESP and GRE reach the public address's port-less worker and
  // are handed over. A keyed multiply-xorshift (not Toeplitz: linear, it
  // would put servers that differ in a few low bits on few workers), then
  // multiply-shift onto [0, W), so W need not be a power of two.
  [[nodiscard]] unsigned worker_of_server(be32 server) const {
    std::uint64_t h = (std::uint64_t{server.raw} ^ server_key_) * 0x9e37'79b9'7f4a'7c15ull;
    h ^= h >> 29;
    h *= 0xbf58'476d'1ce4'e5b9ull;
    h ^= h >> 32;
    return static_cast<unsigned>(((h & 0xffff'ffffull) * workers_) >> 32);
  }

  // --- ownership ------------------------------------------------------------
  // When one_residue_per_worker(): worker w owns on public_addr exactly the
  // ports p with p % stride() == port_residue(public_addr, w). One table
  // lookup after the address hash. Otherwise returns the smallest residue.
  [[nodiscard]] std::uint16_t port_residue(be32 public_addr, unsigned worker) const {
    if (one_residue_per_worker())
      return residue_of_index_[(address_hash(public_addr) ^ worker) & stride_mask_];
    return residue_fallback(public_addr, worker);
  }
  // Every residue modulo stride() that `worker` owns on public_addr, sorted
  // ascending; returns how many (at most stride() / workers() + 1, and out
  // must hold that many).
  std::size_t owned_residues(be32 public_addr, unsigned worker, std::span<std::uint16_t> out) const;
  [[nodiscard]] std::size_t max_residues_per_worker() const {
    return (stride() + workers_ - 1) / workers_;
  }

 private:
  using ByteTables = std::array<std::array<std::uint32_t, 256>, 4>;
  RssSteering() = default;
  // Tables are indexed by the address's wire bytes (raw byte 0 = MSB).
  [[nodiscard]] static std::uint32_t table_hash(const ByteTables& t, be32 a) {
    const std::uint32_t r = a.raw;
    return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24];
  }
  [[nodiscard]] std::uint32_t address_hash(be32 a) const { return table_hash(address_hash_, a); }
  [[nodiscard]] std::uint16_t residue_fallback(be32 public_addr, unsigned worker) const;

  RssKey outside_key_{};
  RssKey inside_key_{};
  OutsideLayout layout_ = OutsideLayout::packed;
  unsigned workers_ = 1;
  std::uint32_t reta_mask_ = 0;
  std::uint32_t stride_mask_ = 0;
  std::uint64_t server_key_ = 0;
  ByteTables address_hash_{};                              // outside, destination address
  std::array<std::array<std::uint32_t, 256>, 2> port_hash_{};  // outside, port high / low byte
  ByteTables inside_hash_{};                               // inside, source address
  std::vector<std::uint16_t> reta_;
  std::vector<std::uint16_t> residue_of_index_;  // M^-1: low hash bits -> port residue
};

}  // namespace passgate::steering
