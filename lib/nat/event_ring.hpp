// The events a worker's engine reports to the control core (RFC 6888
// REQ-12..14 logging), the ring that carries them, and the gate that keeps
// an abuser's limit events from flooding it. Exported as RFC 8158 IPFIX and
// RFC 5424 syslog by lib/control; nothing here knows about either format.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "packet/byte_order.hpp"

namespace passgate::nat {

using packet::be16;
using packet::be32;

// Port-block, limit and (optionally) session events for logging (RFC 6888
// REQ-12..14, exported as RFC 8158 IPFIX and RFC 5424 syslog by the control
// core). Block events carry only the subscriber, its public address and the
// port range, never destinations.
struct NatEvent {
  enum class Type : std::uint8_t {
    block_allocated,
    block_released,
    ports_exhausted,
    session_limit,
    pool_exhausted,
    port_preserved,  // a single port outside the blocks (IKE/L2TP) given to the subscriber
    port_released,   // and returned
    session_created, // only with session logging on
    session_deleted
  };
  Type type;
  std::uint64_t time_ms;  // engine clock; the control core turns it into Unix time before export
  be32 subscriber;
  be32 public_address;
  std::uint16_t port_first, port_last;  // session events: the public port in both
  std::uint32_t pool;
  std::uint16_t port_step = 1;          // ports of the range used: first, first+step, ... (RFC 8158 portRangeStepSize)
  std::uint8_t protocol = 0;            // session events: IP protocol number
  be16 inside_port{};                   // session events
  be32 remote_address{};                // session events
  be16 remote_port{};                   // session events
  std::uint32_t suppressed = 0;         // limit events: how many of this type and subscriber were
                                        // rate-limited since the previous one (limits.limit_event_interval_ms)
};
const char* to_string(NatEvent::Type t);

// Single-producer (the worker) single-consumer (the control core) ring of
// events; when full, the event is counted as lost, the worker never waits.
// RFC 6888 REQ-12: the records that say who held a port (blocks, preserved
// ports) always have room: limit and session events may fill the ring only
// up to three quarters, so an abuser hitting its limits cannot push other
// subscribers' block records out.
class EventRing {
 public:
  explicit EventRing(std::uint32_t capacity) : items_(capacity), low_priority_limit_(capacity - capacity / 4) {}
  bool push(const NatEvent& e) { return push_up_to(e, items_.size()); }
  bool push_low_priority(const NatEvent& e) { return push_up_to(e, low_priority_limit_); }
  bool push_up_to(const NatEvent& e, std::size_t limit) {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) >= limit) return false;
    items_[head % items_.size()] = e;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }
  bool pop(NatEvent& e) {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_.load(std::memory_order_acquire)) return false;
    e = items_[tail % items_.size()];
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }
  [[nodiscard]] std::size_t size() const {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
  }

 private:
  std::vector<NatEvent> items_;
  std::size_t low_priority_limit_;
  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint64_t> tail_{0};
};

// Issue 11.4: limit events are what an abuser produces at packet rate, so
// each subscriber (or pool) and kind of limit gets one event per interval;
// the next one carries how many were suppressed in between. One gate per
// subscriber record and per pool (for hosts that got no subscriber record).
class LimitEventGate {
 public:
  enum Kind : unsigned { session_limit = 0, ports_exhausted = 1, pool_exhausted = 2 };
  static constexpr Kind kind_of(NatEvent::Type t) {
    return t == NatEvent::Type::session_limit     ? session_limit
           : t == NatEvent::Type::ports_exhausted ? ports_exhausted
                                                  : pool_exhausted;
  }
  // False (and one more suppressed) while the last event of this kind that
  // was sent is younger than interval_ms.
  bool admits(Kind k, std::uint64_t now_ms, std::uint64_t interval_ms) {
    if (last_ms_[k] != 0 && now_ms < last_ms_[k] + interval_ms) {
      ++suppressed_[k];
      return false;
    }
    return true;
  }
  [[nodiscard]] std::uint32_t suppressed(Kind k) const { return suppressed_[k]; }
  // Called only once the event is in the ring: an event lost to a full ring
  // leaves the gate open, so the next one tries again. Time 0 is a valid
  // clock reading, hence the 1 (0 means "never sent").
  void sent(Kind k, std::uint64_t now_ms) {
    last_ms_[k] = now_ms == 0 ? 1 : now_ms;
    suppressed_[k] = 0;
  }

 private:
  std::uint64_t last_ms_[3] = {0, 0, 0};
  std::uint32_t suppressed_[3] = {0, 0, 0};
};

}  // namespace passgate::nat
