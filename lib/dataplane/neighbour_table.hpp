// ARP neighbour cache of one port, owned by one worker (no locks).
//
// Theory of operation: entries live in a fixed array found by open
// addressing on the IPv4 address. A next hop that is not known gets an
// "incomplete" entry; the packets for it wait in the entry's bounded queue
// while ARP requests go out every retry interval; after max_retries
// unanswered requests the entry fails and its packets are dropped and
// counted. A reachable entry older than reachable_seconds is re-probed while
// traffic keeps using the old address (as Linux does with STALE/PROBE), and
// removed only if the probe is not answered. Static entries never expire
// and nothing a neighbour says changes them. Entries created because a
// neighbour asked for us (RFC 826) rather than because we needed it may fill
// only `unsolicited_percent` of the table, so a host that sends requests
// from many addresses cannot crowd out the next hops traffic needs.
// Nothing is allocated after construction.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <vector>

#include "config/gateway_config.hpp"

namespace passgate::dataplane {

using config::MacAddress;
using nat::be32;

class NeighbourTable {
 public:
  enum class State : std::uint8_t { free, incomplete, reachable, probing, fixed };

  struct Entry {
    be32 address{};
    MacAddress mac{};
    State state = State::free;
    std::uint8_t retries = 0;
    bool unsolicited = false;  // created by a request for us, not yet needed
    std::uint16_t queued = 0;
    std::uint64_t expires_ms = 0;     // reachable: re-probe after; incomplete/probing: next retry
    std::uint32_t queue_offset = 0;   // into queue_
  };

  explicit NeighbourTable(const config::NeighbourConfig& cfg);
  ~NeighbourTable();  // frees queued mbufs
  NeighbourTable(const NeighbourTable&) = delete;
  NeighbourTable& operator=(const NeighbourTable&) = delete;

  void add_static(be32 address, const MacAddress& mac);

  // The MAC to send to, or nullptr: then the caller queues the packet.
  const MacAddress* lookup(be32 address, std::uint64_t now_ms);

  // full: this neighbour's queue; held_full: the port's packets waiting
  // for ARP over all neighbours (neighbour.held).
  enum class QueueResult { queued, queued_send_request, full, held_full, table_full };
  // Holds the packet until `address` resolves. queued_send_request: this is
  // a new entry and the caller should send an ARP request now.
  QueueResult enqueue(be32 address, rte_mbuf* m, std::uint64_t now_ms);

  // A reply or request from `address` told us its MAC. An existing entry
  // takes it (its queued packets are handed to `flush`), a static one keeps
  // its own; a new entry is made only if `create` (RFC 826: merge only,
  // create when we are the target of a request) and the unsolicited share
  // has room.
  enum class Learned { updated, created, not_known, static_kept, unsolicited_full };
  template <typename Flush>
  Learned learn(be32 address, const MacAddress& mac, std::uint64_t now_ms, bool create, Flush&& flush);

  // Entries needing an ARP request now (retry or probe); entries that ran out
  // of retries are failed and their packets handed to `drop`.
  template <typename Request, typename Drop>
  void tick(std::uint64_t now_ms, Request&& request, Drop&& drop);

  [[nodiscard]] std::size_t size() const { return used_; }
  [[nodiscard]] std::size_t unsolicited() const { return unsolicited_; }
  [[nodiscard]] std::size_t held() const { return held_; }
  [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }

 private:
  Entry* find(be32 address);
  Entry* insert(be32 address);
  void release(Entry& e);
  [[nodiscard]] std::size_t slot_of(be32 address) const {
    return (static_cast<std::uint64_t>(address.raw) * 0x9e3779b97f4a7c15ull >> 32) & mask_;
  }

  config::NeighbourConfig cfg_;
  std::vector<Entry> entries_;
  std::vector<rte_mbuf*> queue_;
  std::size_t mask_ = 0;
  std::size_t used_ = 0;
  std::size_t unsolicited_ = 0;
  std::size_t held_ = 0;  // packets in every queue
  std::size_t unsolicited_limit_ = 0;
};

template <typename Flush>
NeighbourTable::Learned NeighbourTable::learn(be32 address, const MacAddress& mac, std::uint64_t now_ms, bool create,
                                              Flush&& flush) {
  Entry* e = find(address);
  Learned result = Learned::updated;
  if (!e) {
    if (!create) return Learned::not_known;
    if (unsolicited_ >= unsolicited_limit_) return Learned::unsolicited_full;
    e = insert(address);
    if (!e) return Learned::unsolicited_full;
    e->unsolicited = true;
    ++unsolicited_;
    result = Learned::created;
  }
  if (e->state == State::fixed) return Learned::static_kept;
  e->mac = mac;
  e->state = State::reachable;
  e->retries = 0;
  e->expires_ms = now_ms + std::uint64_t{cfg_.reachable_seconds} * 1000;
  for (std::uint16_t i = 0; i < e->queued; ++i) flush(queue_[e->queue_offset + i], e->mac);
  held_ -= e->queued;
  e->queued = 0;
  return result;
}

template <typename Request, typename Drop>
void NeighbourTable::tick(std::uint64_t now_ms, Request&& request, Drop&& drop) {
  for (Entry& e : entries_) {
    if (e.state == State::free || e.state == State::fixed || e.expires_ms > now_ms) continue;
    if (e.state == State::reachable) {
      e.state = State::probing;
      e.retries = 0;
    }
    if (e.retries >= cfg_.max_retries) {
      for (std::uint16_t i = 0; i < e.queued; ++i) drop(queue_[e.queue_offset + i]);
      held_ -= e.queued;
      e.queued = 0;
      release(e);
      continue;
    }
    ++e.retries;
    e.expires_ms = now_ms + cfg_.retry_ms;
    request(e.address);
  }
}

}  // namespace passgate::dataplane
