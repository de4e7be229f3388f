// CGNAT port blocks of one worker's engine (RFC 6888 REQ-2..4, REQ-13/14).
//
// Theory of operation. Each public address of a pool is cut into blocks of
// block_size ports. A subscriber owns up to max_blocks_per_subscriber blocks,
// all on the one address it is paired with (REQ-2), and its mappings take
// ports only from them, so one log record per block names the owner of
// every port in it, instead of one record per session. With several
// workers each engine owns a comb of every address: the ports p with
// p % step == residue(address), the ones the NIC's RSS delivers to it
// (PortShare, engine.hpp); a block is then block_size ports of that comb
// spaced `step` apart (logged as RFC 8158 portRangeStepSize).
//
// The allocator holds the address and block records, in segmented arrays so
// that a reload's plan builds the records of added addresses away from the
// worker (Growth) and the worker only links them in; each subscriber's list
// of blocks; and the ports of each block in use per protocol, which decide
// when a block returns to its address. The engine keeps the subscribers
// (and their block count, passed in by reference), the pools (and their
// block size, passed in), the events and the counters. Randomness is the
// engine's: allocate() and block_with_room() take a draw, so the choices
// for a seed are those of the engine's one generator, in the order the
// engine draws (port choices included, which it makes itself).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "nat/nat_config.hpp"
#include "nat/proto.hpp"
#include "table/flow_table.hpp"
#include "table/segmented_array.hpp"

namespace passgate::nat {

using packet::be16;
using packet::be32;
using table::no_index;

class BlockAllocator {
 public:
  struct Block {
    std::uint32_t subscriber;  // no_index = free
    std::uint32_t address;     // index of its PublicAddress
    std::uint16_t used[proto_count];
    std::uint16_t first_port;  // host order
  };
  struct PublicAddress {
    be32 addr;
    std::uint32_t pool;
    std::uint32_t first_block;
    std::uint32_t free_blocks;
    bool retired = false;  // removed from its pool by a reload: no new blocks, existing ones drain
                           // (a removed pool's addresses keep false: the engine's Pool::retired covers them all)
    std::uint16_t base_port = 0;  // first port of this engine's comb at or above port_min
    std::uint32_t blocks = 0;     // this engine's blocks on the address
    // Deterministic pools (deterministic.hpp): block n is this engine's
    // share of range n, ports range_first + n*range_ports onwards; 0: dynamic.
    std::uint16_t range_first = 0;
    std::uint16_t range_ports = 0;
  };
  // This engine's comb of a public address's ports: first port and blocks.
  struct Comb {
    std::uint16_t base;
    std::uint32_t blocks;
  };
  using AddressArray = table::SegmentedArray<PublicAddress, 10>;
  using BlockArray = table::SegmentedArray<Block, 12>;
  // The records of the addresses a reload adds, built by its plan on the
  // control core (reload_plan.hpp) and linked in by adopt() on the worker.
  struct Growth {
    AddressArray::Growth addresses;
    BlockArray::Growth blocks;
  };
  using PortCounts = std::array<std::uint32_t, proto_count>;

  // Room for the block lists of `subscribers` subscribers of at most
  // `max_blocks` blocks each (fixed at start: a reload may not raise it).
  // `step` and `residue` are the engine's comb (PortShare); an empty
  // residue means 0.
  BlockAllocator(std::uint32_t subscribers, std::uint32_t max_blocks, std::uint16_t step,
                 std::function<std::uint16_t(be32)> residue);
  BlockAllocator(const BlockAllocator&) = delete;
  BlockAllocator& operator=(const BlockAllocator&) = delete;

  // ---- geometry ----
  [[nodiscard]] Comb comb_of(const PoolConfig& pc, be32 addr) const;
  // Port `offset` (0 .. block_size - 1) of block `b`.
  [[nodiscard]] be16 port(std::uint32_t b, std::uint32_t offset) const {
    return be16::from_host(static_cast<std::uint16_t>(blocks_[b].first_port + offset * step_));
  }
  [[nodiscard]] std::uint16_t last_port(std::uint32_t b, std::uint16_t block_size) const {
    return static_cast<std::uint16_t>(blocks_[b].first_port + (block_size - 1u) * step_);
  }
  // Whether this engine's comb holds `port` on the address.
  [[nodiscard]] bool owns_port(const PublicAddress& a, std::uint16_t port) const {
    return step_ == 1 || port % step_ == a.base_port % step_;
  }
  // The block of the address holding `port`, or no_index when the port is
  // outside the dynamic range or not in this engine's comb.
  [[nodiscard]] std::uint32_t block_of_port(const PublicAddress& a, std::uint16_t port,
                                            std::uint16_t block_size) const {
    if (port < a.base_port || !owns_port(a, port)) return no_index;
    if (a.range_ports != 0) {  // deterministic: the range's block, if its share reaches the port
      const std::uint32_t n = (port - a.range_first) / a.range_ports;
      if (n >= a.blocks) return no_index;
      const std::uint32_t b = a.first_block + n;
      return port >= blocks_[b].first_port && port <= last_port(b, block_size) ? b : no_index;
    }
    const std::uint32_t n = (port - a.base_port) / step_ / block_size;
    return n < a.blocks ? a.first_block + n : no_index;
  }

  // ---- records ----
  // A public address of pool `pool` and its blocks, at start (allocates).
  std::uint32_t add_address(std::uint32_t pool, be32 addr, const PoolConfig& pc);
  // The same for a reload, into `g`: reads only what adopt() changes.
  [[nodiscard]] Growth grow() const { return Growth{AddressArray::Growth(addresses_), BlockArray::Growth(blocks_)}; }
  std::uint32_t add_address(Growth& g, std::uint32_t pool, be32 addr, const PoolConfig& pc) const;
  void finish(Growth& g) const;
  // Whether `g` was prepared against the records as they are now.
  [[nodiscard]] bool fits(const Growth& g) const { return addresses_.fits(g.addresses) && blocks_.fits(g.blocks); }
  // Links `g` in without allocating; returns the records and pointers written.
  std::size_t adopt(Growth& g);
  [[nodiscard]] const PublicAddress& address(std::uint32_t i) const { return addresses_[i]; }
  [[nodiscard]] const Block& block(std::uint32_t b) const { return blocks_[b]; }
  [[nodiscard]] std::size_t address_count() const { return addresses_.size(); }
  [[nodiscard]] std::size_t block_count() const { return blocks_.size(); }
  void set_retired(std::uint32_t address, bool retired) { addresses_[address].retired = retired; }

  // ---- ownership ----
  // A free block of `address` for `sub`, appended to its list (`sub_blocks`
  // is the subscriber's count): the search starts at a random block, so a
  // subscriber's ports cannot be guessed from the order blocks are handed
  // out (RFC 6056's aim, one level up). One draw, only when the address has
  // a free block.
  template <typename Draw>
  std::uint32_t allocate(std::uint32_t sub, std::uint32_t address, std::uint16_t& sub_blocks, Draw&& draw);
  // Block `b` (a deterministic subscriber's own) for `sub` if it is free.
  std::uint32_t allocate_at(std::uint32_t sub, std::uint32_t b, std::uint16_t& sub_blocks);
  // Block `b` goes back to its address and leaves its owner's list by a swap
  // with the last entry (the list is unordered; every pick is random anyway).
  void release(std::uint32_t b, std::uint16_t& sub_blocks);
  // One of the subscriber's blocks with a free `proto` port, searched from a
  // random one (RFC 6056); no_index when all are full. One draw, only when
  // the subscriber has blocks.
  template <typename Draw>
  [[nodiscard]] std::uint32_t block_with_room(std::uint32_t sub, std::uint16_t sub_blocks, Proto proto,
                                              std::uint16_t block_size, Draw&& draw) const;
  void count_port(std::uint32_t b, Proto proto) { ++blocks_[b].used[static_cast<unsigned>(proto)]; }
  // True when the block has no port of any protocol left in use.
  bool uncount_port(std::uint32_t b, Proto proto) {
    Block& blk = blocks_[b];
    --blk.used[static_cast<unsigned>(proto)];
    return blk.used[0] == 0 && blk.used[1] == 0 && blk.used[2] == 0;
  }
  [[nodiscard]] std::span<const std::uint32_t> blocks_of(std::uint32_t sub, std::uint16_t sub_blocks) const {
    return {&subscriber_blocks_[std::size_t{sub} * max_blocks_], sub_blocks};
  }
  [[nodiscard]] std::uint32_t blocks_in_use() const { return blocks_in_use_; }

  // Address and block records; the subscribers' lists apart, since the
  // engine reports them with the subscribers (MemoryUse).
  [[nodiscard]] std::size_t memory_bytes() const;
  [[nodiscard]] std::size_t list_bytes() const { return subscriber_blocks_.size() * sizeof(std::uint32_t); }

  // What the engine knows of a block's owner.
  struct Owner {
    std::uint32_t address;
    std::uint16_t blocks;
  };
  // The block part of Engine::check_invariants: counts of free blocks and
  // blocks in use, each block on its owner's address and in its list, and
  // its ports in use equal to `held`, the engine's mappings counted per
  // block. `owner(sub, out)` fills in a live owner, or returns why not.
  [[nodiscard]] std::string check_invariants(std::span<const PortCounts> held,
                                             const std::function<std::string(std::uint32_t, Owner&)>& owner) const;

 private:
  template <typename Addresses, typename Blocks>
  std::uint32_t append(Addresses& addresses, Blocks& blocks, std::size_t index, std::size_t first_block,
                       std::uint32_t pool, be32 addr, const PoolConfig& pc) const;

  std::uint16_t step_;
  std::function<std::uint16_t(be32)> residue_;
  AddressArray addresses_;
  BlockArray blocks_;
  std::uint32_t blocks_in_use_ = 0;
  std::vector<std::uint32_t> subscriber_blocks_;  // max_blocks_ slots per subscriber
  std::uint32_t max_blocks_;
};

template <typename Draw>
std::uint32_t BlockAllocator::allocate(std::uint32_t sub, std::uint32_t address, std::uint16_t& sub_blocks,
                                       Draw&& draw) {
  PublicAddress& a = addresses_[address];
  if (a.free_blocks == 0) return no_index;
  const std::uint32_t per = a.blocks;
  const auto start = static_cast<std::uint32_t>(static_cast<std::uint64_t>(draw()) % per);
  for (std::uint32_t k = 0; k < per; ++k) {
    const std::uint32_t b = a.first_block + (start + k) % per;
    Block& blk = blocks_[b];
    if (blk.subscriber != no_index) continue;
    blk.subscriber = sub;
    blk.used[0] = blk.used[1] = blk.used[2] = 0;
    --a.free_blocks;
    subscriber_blocks_[std::size_t{sub} * max_blocks_ + sub_blocks++] = b;
    ++blocks_in_use_;
    return b;
  }
  return no_index;
}

template <typename Draw>
std::uint32_t BlockAllocator::block_with_room(std::uint32_t sub, std::uint16_t sub_blocks, Proto proto,
                                              std::uint16_t block_size, Draw&& draw) const {
  if (sub_blocks == 0) return no_index;
  const std::uint32_t* list = &subscriber_blocks_[std::size_t{sub} * max_blocks_];
  const unsigned pi = static_cast<unsigned>(proto);
  const auto first = static_cast<std::uint32_t>(static_cast<std::uint64_t>(draw()) % sub_blocks);
  for (std::uint32_t k = 0; k < sub_blocks; ++k) {
    const std::uint32_t b = list[(first + k) % sub_blocks];
    if (blocks_[b].used[pi] < block_size) return b;
  }
  return no_index;
}

}  // namespace passgate::nat
