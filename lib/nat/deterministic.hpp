// Deterministic NAT (RFC 7422): a pool whose every subscriber address has a
// fixed public address and port range, computed from the configuration
// alone, so "who had public address:port at time T" is answered without
// per-block logs (README "Deterministic or dynamic pools").
//
// The arithmetic, for one pool (RFC 7422 section 2, assignment algorithm
// 0, "sequential"; its section 2.3 example is a unit test):
//   N = subscriber addresses: the host addresses of its prefixes in
//       configuration order, each prefix from its first host up; a prefix
//       of length 30 or less leaves out its network and broadcast addresses
//       (as the RFC's example does: 198.51.100.0/28 holds 14 subscribers);
//   M = public addresses: every address of its ranges, in configuration order;
//   C = the sharing ratio, subscribers per public address: the configured
//       sharing_ratio, or ceil(N / M). A ratio above ceil(N / M) leaves the
//       top ranges of each address unused, like the RFC's factor D (there a
//       dynamic overflow pool; passgate keeps no dynamic ports in a
//       deterministic pool);
//   P = ports per subscriber = floor((port_max - port_min + 1) / C).
// The subscriber of index i (0 .. N-1) gets
//   public address  index i div C,
//   port range      r = i mod C: ports port_min + r*P .. port_min + (r+1)*P - 1,
// so one public address serves C consecutive subscribers (as FD.io VPP's
// det44 and Juniper's deterministic NAPT do): "who used public address X"
// is one contiguous run of inside addresses. The RFC leaves the order over
// several public addresses open. The reverse is as direct: for address index
// k and port p, r = (p - port_min) div P and i = k*C + r, a subscriber when
// r < C and i < N.
//
// Inside its range a subscriber's ports are still chosen at random
// (RFC 6056). With several workers each worker owns a comb of every public
// address (the ports p with p % workers == residue(address), engine.hpp
// PortShare), so a worker uses the ports of the subscriber's range that lie
// on its comb: floor(P / workers) of them (the engine's block, one per
// subscriber and worker); the few left over at the range's edges stay unused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nat/nat_config.hpp"

namespace passgate::nat {

struct DeterministicGeometry {
  std::uint64_t subscribers = 0;          // N
  std::uint64_t addresses = 0;            // M
  std::uint32_t ratio = 0;                // C
  std::uint32_t ports_per_subscriber = 0; // P (0: the range cannot hold C subscribers)
  std::uint32_t ranges = 0;               // port ranges per public address that can be in use: min(C, N)
};

// The geometry from the pool's lists alone (cheap: O(prefixes + ranges)).
DeterministicGeometry deterministic_geometry(const PoolConfig& pc);

// What a problem with a deterministic pool's geometry is, or empty.
std::string deterministic_problem(const PoolConfig& pc);

class DeterministicMap {
 public:
  explicit DeterministicMap(const PoolConfig& pc);

  struct Slot {
    std::uint64_t subscriber_index;  // i
    std::uint32_t address_index;     // k: into the public addresses in configuration order
    std::uint32_t range;             // r
    be32 public_address;
    std::uint16_t first_port, last_port;  // P ports, inclusive
  };
  // The slot of an inside address, nullopt when it is in none of the
  // prefixes or is a prefix's network or broadcast address.
  [[nodiscard]] std::optional<Slot> forward(be32 inside) const;
  // The subscriber whose range holds public:port, nullopt when none does.
  [[nodiscard]] std::optional<be32> reverse(be32 public_address, std::uint16_t port) const;
  // The inside address of subscriber index i (i < N).
  [[nodiscard]] be32 subscriber_at(std::uint64_t i) const;
  [[nodiscard]] const DeterministicGeometry& geometry() const { return geometry_; }
  [[nodiscard]] std::uint16_t port_min() const { return port_min_; }

 private:
  DeterministicGeometry geometry_;
  std::uint16_t port_min_;
  std::vector<Ipv4Prefix> prefixes_;
  std::vector<std::uint64_t> prefix_start_;  // index of each prefix's first host
  std::vector<AddressRange> publics_;
  std::vector<std::uint64_t> public_start_;  // index of each range's first address
};

// ---- pool geometry, both modes ----
// Port blocks on each public address of the pool: ports / block_size for a
// dynamic pool, the ranges in use for a deterministic one.
std::uint32_t blocks_per_address(const PoolConfig& pc);
// Whether a reload keeps the pool's blocks where they are: the same port
// range and block size, and for a deterministic pool the same mapping (its
// prefixes, public addresses and ratio: any change moves subscribers).
bool same_geometry(const PoolConfig& a, const PoolConfig& b);
// The pool as one engine uses it with `step` workers: a deterministic
// pool's block is the subscriber's range on that engine's comb,
// floor(P / step) ports, one per subscriber; 0 when P < step (then the
// engine has no block on it, Engine::create refuses it).
PoolConfig per_engine(const PoolConfig& pc, std::uint16_t step);

// One line that states a pool's mapping completely, for the mapping event
// logged at start and at every reload (syslog and IPFIX) and read back by
// passgate-lookup:
//   algorithm=rfc7422 pool=cgn subscribers=100.64.0.0/22 public=198.51.100.10-198.51.100.25
//   ports=1024-65535 ratio=64 ports_per_subscriber=1008
std::string describe_mapping(const PoolConfig& pc);
// The pool described by such a line (name, prefixes, public ranges, ports,
// ratio; mode deterministic), or nullopt with *error saying what is wrong.
std::optional<PoolConfig> parse_mapping(const std::string& line, std::string* error);

}  // namespace passgate::nat
