#include "dataplane/neighbour_table.hpp"

#include <bit>

namespace passgate::dataplane {

NeighbourTable::NeighbourTable(const config::NeighbourConfig& cfg) : cfg_(cfg) {
  // Open addressing: keep the table at most half full.
  const std::size_t slots = std::bit_ceil(std::size_t{cfg.table_size} * 2);
  entries_.resize(slots);
  mask_ = slots - 1;
  unsolicited_limit_ = std::size_t{cfg.table_size} * cfg.unsolicited_percent / 100;
  queue_.resize(slots * cfg.queue_packets, nullptr);
  for (std::size_t i = 0; i < slots; ++i) entries_[i].queue_offset = static_cast<std::uint32_t>(i * cfg.queue_packets);
}

NeighbourTable::~NeighbourTable() {
  for (Entry& e : entries_)
    for (std::uint16_t i = 0; i < e.queued; ++i) rte_pktmbuf_free(queue_[e.queue_offset + i]);
}

NeighbourTable::Entry* NeighbourTable::find(be32 address) {
  for (std::size_t i = slot_of(address), n = 0; n <= mask_; i = (i + 1) & mask_, ++n) {
    Entry& e = entries_[i];
    if (e.state == State::free) return nullptr;
    if (e.address == address) return &e;
  }
  return nullptr;
}

NeighbourTable::Entry* NeighbourTable::insert(be32 address) {
  if (used_ >= cfg_.table_size) return nullptr;
  for (std::size_t i = slot_of(address), n = 0; n <= mask_; i = (i + 1) & mask_, ++n) {
    Entry& e = entries_[i];
    if (e.state != State::free) continue;
    e.address = address;
    e.state = State::incomplete;
    e.retries = 0;
    e.unsolicited = false;
    e.queued = 0;
    e.expires_ms = 0;
    ++used_;
    return &e;
  }
  return nullptr;
}

// Backward-shift deletion keeps every remaining entry reachable from its
// home slot without tombstones.
void NeighbourTable::release(Entry& victim) {
  std::size_t hole = static_cast<std::size_t>(&victim - entries_.data());
  if (victim.unsolicited) --unsolicited_;
  victim.state = State::free;
  --used_;
  std::size_t i = hole;
  for (;;) {
    i = (i + 1) & mask_;
    Entry& e = entries_[i];
    if (e.state == State::free) break;
    const std::size_t home = slot_of(e.address);
    // Move e into the hole if its home is not cyclically in (hole, i].
    const bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (stays) continue;
    // Queues belong to slots: move the queued packets along with the entry.
    Entry& h = entries_[hole];
    const std::uint32_t q = h.queue_offset;
    for (std::uint16_t k = 0; k < e.queued; ++k) queue_[q + k] = queue_[e.queue_offset + k];
    h = e;
    h.queue_offset = q;
    e.state = State::free;
    e.queued = 0;
    hole = i;
  }
}

void NeighbourTable::add_static(be32 address, const MacAddress& mac) {
  Entry* e = find(address);
  if (!e) e = insert(address);
  if (!e) return;
  if (e->unsolicited) --unsolicited_;
  e->unsolicited = false;
  e->mac = mac;
  e->state = State::fixed;
}

const MacAddress* NeighbourTable::lookup(be32 address, std::uint64_t now_ms) {
  (void)now_ms;
  Entry* e = find(address);
  if (!e) return nullptr;
  if (e->unsolicited) {  // traffic needs it now: it counts as a next hop
    e->unsolicited = false;
    --unsolicited_;
  }
  switch (e->state) {
    case State::reachable:
    case State::probing:
    case State::fixed:
      return &e->mac;
    default:
      return nullptr;
  }
}

NeighbourTable::QueueResult NeighbourTable::enqueue(be32 address, rte_mbuf* m, std::uint64_t now_ms) {
  if (held_ >= cfg_.held_packets) return QueueResult::held_full;
  Entry* e = find(address);
  bool created = false;
  if (!e) {
    e = insert(address);
    if (!e) return QueueResult::table_full;
    created = true;
    e->retries = 1;
    e->expires_ms = now_ms + cfg_.retry_ms;
  }
  if (e->queued >= cfg_.queue_packets) return QueueResult::full;
  queue_[e->queue_offset + e->queued++] = m;
  ++held_;
  return created ? QueueResult::queued_send_request : QueueResult::queued;
}

}  // namespace passgate::dataplane
