// BlockAllocator: the records of public addresses and their port blocks,
// and their release and checks (block_allocator.hpp).
#include "nat/block_allocator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "nat/deterministic.hpp"

namespace passgate::nat {

BlockAllocator::BlockAllocator(std::uint32_t subscribers, std::uint32_t max_blocks, std::uint16_t step,
                               std::function<std::uint16_t(be32)> residue)
    : step_(step), residue_(std::move(residue)), max_blocks_(max_blocks) {
  subscriber_blocks_.assign(std::size_t{subscribers} * max_blocks_, no_index);
}

// With several workers only this engine's comb of the range is used:
// base = first port >= port_min with port % step == residue.
BlockAllocator::Comb BlockAllocator::comb_of(const PoolConfig& pc, be32 addr) const {
  const std::uint32_t step = step_;
  const std::uint32_t residue = residue_ ? residue_(addr) % step : 0;
  const std::uint32_t base = pc.port_min + (residue + step - pc.port_min % step) % step;
  const std::uint32_t comb_ports = base > pc.port_max ? 0 : (pc.port_max - base) / step + 1;
  return Comb{static_cast<std::uint16_t>(base), pc.block_size == 0 ? 0 : comb_ports / pc.block_size};
}

// One body for the arrays (at start) and for a reload's growth of them.
template <typename Addresses, typename Blocks>
std::uint32_t BlockAllocator::append(Addresses& addresses, Blocks& blocks, std::size_t index,
                                     std::size_t first_block, std::uint32_t pool, be32 addr,
                                     const PoolConfig& pc) const {
  const Comb comb = comb_of(pc, addr);
  const auto idx = static_cast<std::uint32_t>(index);
  if (pc.mode == PoolMode::deterministic) {
    // Block n: this engine's block_size ports of range n, from the first
    // port of its comb in the range (per_engine made block_size fit).
    const std::uint32_t ranges = blocks_per_address(pc);
    const std::uint32_t per = deterministic_geometry(pc).ports_per_subscriber;
    const std::uint32_t residue = comb.base % step_;
    addresses.push_back(PublicAddress{addr, pool, static_cast<std::uint32_t>(first_block), ranges, false, comb.base,
                                      ranges, pc.port_min, static_cast<std::uint16_t>(per)});
    for (std::uint32_t n = 0; n < ranges; ++n) {
      const std::uint32_t start = pc.port_min + n * per;
      const std::uint32_t first = start + (residue + step_ - start % step_) % step_;
      blocks.push_back(Block{no_index, idx, {0, 0, 0}, static_cast<std::uint16_t>(first)});
    }
    return idx;
  }
  addresses.push_back(
      PublicAddress{addr, pool, static_cast<std::uint32_t>(first_block), comb.blocks, false, comb.base, comb.blocks});
  for (std::uint32_t n = 0; n < comb.blocks; ++n)
    blocks.push_back(
        Block{no_index, idx, {0, 0, 0}, static_cast<std::uint16_t>(comb.base + n * pc.block_size * step_)});
  return idx;
}

std::uint32_t BlockAllocator::add_address(std::uint32_t pool, be32 addr, const PoolConfig& pc) {
  return append(addresses_, blocks_, addresses_.size(), blocks_.size(), pool, addr, pc);
}

std::uint32_t BlockAllocator::add_address(Growth& g, std::uint32_t pool, be32 addr, const PoolConfig& pc) const {
  return append(g.addresses, g.blocks, g.addresses.next_index(), g.blocks.next_index(), pool, addr, pc);
}

void BlockAllocator::finish(Growth& g) const {
  g.addresses.finish(addresses_);
  g.blocks.finish(blocks_);
}

std::size_t BlockAllocator::adopt(Growth& g) {
  const std::size_t work = g.addresses.adopt_work() + g.blocks.adopt_work();
  addresses_.adopt(g.addresses);
  blocks_.adopt(g.blocks);
  return work;
}

std::uint32_t BlockAllocator::allocate_at(std::uint32_t sub, std::uint32_t b, std::uint16_t& sub_blocks) {
  Block& blk = blocks_[b];
  if (blk.subscriber != no_index) return no_index;
  blk.subscriber = sub;
  blk.used[0] = blk.used[1] = blk.used[2] = 0;
  --addresses_[blk.address].free_blocks;
  subscriber_blocks_[std::size_t{sub} * max_blocks_ + sub_blocks++] = b;
  ++blocks_in_use_;
  return b;
}

void BlockAllocator::release(std::uint32_t b, std::uint16_t& sub_blocks) {
  Block& blk = blocks_[b];
  std::uint32_t* list = &subscriber_blocks_[std::size_t{blk.subscriber} * max_blocks_];
  for (std::uint32_t k = 0; k < sub_blocks; ++k)
    if (list[k] == b) {
      list[k] = list[--sub_blocks];
      break;
    }
  blk.subscriber = no_index;
  ++addresses_[blk.address].free_blocks;
  --blocks_in_use_;
}

std::size_t BlockAllocator::memory_bytes() const {
  return blocks_.size() * sizeof(Block) + addresses_.size() * sizeof(PublicAddress);
}

std::string BlockAllocator::check_invariants(std::span<const PortCounts> held,
                                             const std::function<std::string(std::uint32_t, Owner&)>& owner) const {
  std::uint32_t in_use = 0;
  std::vector<std::uint32_t> free_per_address(addresses_.size(), 0);
  for (std::uint32_t b = 0; b < blocks_.size(); ++b) {
    const Block& blk = blocks_[b];
    if (blk.subscriber == no_index) {
      ++free_per_address[blk.address];
      if (held[b] != PortCounts{0, 0, 0}) return fmt::format("free block {} has mappings", b);
      continue;
    }
    Owner o{};
    if (std::string why = owner(blk.subscriber, o); !why.empty()) return why;
    ++in_use;
    if (o.address != blk.address) return fmt::format("block {} is on another address than its subscriber's", b);
    for (unsigned p = 0; p < proto_count; ++p)
      if (blk.used[p] != held[b][p])
        return fmt::format("block {} counts {} {} ports in use, {} mappings hold one", b, blk.used[p],
                           to_string(static_cast<Proto>(p)), held[b][p]);
    const std::span<const std::uint32_t> list = blocks_of(blk.subscriber, o.blocks);
    if (std::find(list.begin(), list.end(), b) == list.end())
      return fmt::format("block {} is missing from its subscriber's block list", b);
  }
  if (in_use != blocks_in_use_) return fmt::format("blocks in use {} != counted {}", blocks_in_use_, in_use);
  for (std::uint32_t a = 0; a < addresses_.size(); ++a)
    if (free_per_address[a] != addresses_[a].free_blocks)
      return fmt::format("address {} counts {} free blocks, {} are free", to_string(addresses_[a].addr),
                         addresses_[a].free_blocks, free_per_address[a]);
  return {};
}

}  // namespace passgate::nat
