// ESP passthrough (RFC 4303 through a NAT; the problems are RFC 3715's).
//
// Theory of operation. ESP has no ports, only a 32-bit SPI per direction,
// chosen by the receiver and negotiated inside encrypted IKE, so the NAT
// cannot read which inbound SPI belongs to which client. It learns:
//   - an outbound packet (client -> server, the server's SPI) finds or
//     creates a security association (SA) keyed by (inside address, server,
//     outbound SPI) and leaves from the subscriber's paired public address;
//   - a new SA waits for the server's first answer: it becomes the "learner"
//     for (public address, server); the server's next packet with an SPI not
//     seen before is bound to it, keyed (public address, server, inbound SPI).
// Binding is only safe when exactly one client behind that public address
// waits for that server. So learning is serialised: while one client is
// waiting (up to learn_window_ms), a *different* client's new SPI to the same
// server is held (copied into a bounded set of slots, up to hold_window_ms)
// and released when the learner is answered or gives up; then the next
// client learns. Re-keying creates new SPIs and simply learns again. Every
// hold, timeout and drop is counted. No allocation after construction.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "nat/flow_table.hpp"
#include "nat/nat_config.hpp"
#include "nat/timer_wheel.hpp"
#include "packet/parse.hpp"

namespace passgate::passthrough {

using nat::be32;

struct EspCounters {
  std::uint64_t sas_created = 0, sas_expired = 0, spis_learned = 0, translated_out = 0, translated_in = 0;
  std::uint64_t held = 0, released = 0, learn_timeouts = 0, learn_queue_full = 0;
  // drops
  std::uint64_t drop_disabled = 0, drop_unknown_spi = 0, drop_hold_full = 0, drop_hold_timeout = 0,
                drop_table_full = 0;
};

class EspTracker {
 public:
  enum class Outcome : std::uint8_t { forward, held, drop_disabled, drop_unknown_spi, drop_hold_full, drop_table_full };

  EspTracker(const nat::EspConfig& cfg, const nat::FlowHasher& hasher);
  // A reload: new switches and timeouts; the table sizes stay those of the start.
  void update_config(const nat::EspConfig& cfg) {
    nat::EspConfig next = cfg;
    next.max_sas = cfg_.max_sas;
    next.hold_packets = cfg_.hold_packets;
    cfg_ = next;
  }


  // Outbound ESP from `p.src` leaving as `public_addr`. `subscriber` is the
  // engine's handle, given back when the SA ends. `created` tells the
  // engine a new SA now counts against the subscriber.
  Outcome outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 public_addr, std::uint32_t subscriber,
                   std::uint64_t now_ms, bool& created);
  Outcome inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms);

  // Ages SAs, learners and held packets. on_freed(subscriber) for each SA
  // that ends.
  template <typename OnFreed>
  void expire(std::uint64_t now_ms, unsigned budget, OnFreed&& on_freed);

  // Held packets now translated (to the outside): emit(bytes) each.
  template <typename Emit>
  void drain_released(Emit&& emit);
  [[nodiscard]] bool has_released() const { return released_ != 0; }

  [[nodiscard]] bool has_sa(be32 in_addr, be32 server, be32 spi) const {
    return find_out(in_addr, server, spi) != nat::no_index;
  }
  // Subscribers of SAs created while releasing held packets (inside
  // inbound() or expire()): the engine takes them to count against limits.
  template <typename Fn>
  void take_created(Fn&& fn) {
    for (std::uint32_t s : pending_created_) fn(s);
    pending_created_.clear();
  }
  // A held packet pins its subscriber (the engine counts the pin when
  // outbound() returns Outcome::held), so the handle it keeps stays valid
  // until it is released, dropped or timed out. Call after take_created():
  // fn(subscriber) once for every held packet that left the hold since.
  template <typename Fn>
  void take_unpinned(Fn&& fn) {
    for (std::uint32_t s : pending_unpinned_) fn(s);
    pending_unpinned_.clear();
  }
  // fn(subscriber) for every live SA and every held packet: what each
  // subscriber's session count and pins must equal (Engine::check_invariants).
  template <typename SaFn, typename HeldFn>
  void for_each_reference(SaFn&& on_sa, HeldFn&& on_held) const {
    for (std::uint32_t i = 0; i < sas_.size(); ++i)
      if (sas_[i].live) on_sa(sas_[i].subscriber);
    for (const Held& h : held_)
      if (h.state == Held::State::held) on_held(h.subscriber);
  }

  [[nodiscard]] const EspCounters& counters() const { return counters_; }
  [[nodiscard]] std::uint32_t active_sas() const { return sa_count_; }
  [[nodiscard]] std::uint32_t learners() const { return learner_count_; }
  [[nodiscard]] std::uint32_t held_packets() const { return held_count_; }

 private:
  struct Sa {
    be32 in_addr, out_addr, server;
    be32 spi_out, spi_in;
    std::uint32_t subscriber;
    std::uint32_t last_seen_s;
    std::uint16_t ip_delta;  // outbound IPv4 checksum delta (in_addr -> out_addr)
    bool bound;              // spi_in known
    bool live;
  };
  struct Learner {  // one per (public address, server) while a client waits
    be32 out_addr, server, client;
    std::uint32_t sa;  // the client's oldest SA waiting for an answer; no_index = free
    std::uint64_t deadline_ms;
    // The same client's further new SAs to this server (several devices
    // behind one CPE, or several child SAs), answered in the order sent.
    std::uint32_t queue[3];
    std::uint8_t queued;
  };
  struct Held {
    enum class State : std::uint8_t { free, held, ready } state = State::free;
    be32 in_addr, out_addr, server;
    std::uint32_t subscriber;
    std::uint64_t expires_ms, order;
    std::uint16_t length;
  };

  std::uint64_t key_out(be32 in_addr, be32 server, be32 spi) const;
  std::uint64_t key_in(be32 out_addr, be32 server, be32 spi) const;
  std::uint64_t key_learner(be32 out_addr, be32 server) const;
  std::uint32_t find_out(be32 in_addr, be32 server, be32 spi) const;
  std::uint32_t find_in(be32 out_addr, be32 server, be32 spi) const;
  std::uint32_t find_learner(be32 out_addr, be32 server) const;
  std::uint32_t create_sa(const packet::ParsedIpv4& p, be32 public_addr, std::uint32_t subscriber);
  void start_learning(std::uint32_t sa, std::uint64_t now_ms);
  void end_learning(std::uint32_t learner);
  // The learner's front SA got its answer or went away: the next waiting SA
  // of the same client learns next; false when none is left.
  bool next_in_line(Learner& L, std::uint64_t now_ms);
  void release_held(be32 out_addr, be32 server, std::uint64_t now_ms);
  void free_sa(std::uint32_t sa);
  static void rewrite_out(std::uint8_t* ip, const Sa& sa);
  static void rewrite_in(std::uint8_t* ip, const Sa& sa);

  nat::EspConfig cfg_;
  nat::FlowHasher hasher_;
  std::vector<Sa> sas_;
  std::vector<std::uint32_t> free_sas_;
  nat::FlowTable by_out_, by_in_;
  nat::TimerWheel wheel_;
  std::vector<Learner> learners_;
  std::vector<std::uint32_t> free_learners_;
  nat::FlowTable learner_table_;
  std::vector<Held> held_;
  std::vector<std::uint8_t> held_bytes_;
  std::uint64_t held_order_ = 0;
  std::uint32_t sa_count_ = 0, learner_count_ = 0, held_count_ = 0, released_ = 0;
  std::uint32_t now_s_ = 0;
  std::vector<std::uint32_t> pending_created_;   // capacity hold_packets, reserved up front
  std::vector<std::uint32_t> pending_unpinned_;  // likewise
  EspCounters counters_;

  static constexpr std::uint32_t slot_bytes = 2048;
};

template <typename OnFreed>
void EspTracker::expire(std::uint64_t now_ms, unsigned budget, OnFreed&& on_freed) {
  now_s_ = static_cast<std::uint32_t>(now_ms / 1000);
  wheel_.advance(now_s_, budget, [&](std::uint32_t i) -> std::uint32_t {
    const Sa& sa = sas_[i];
    const std::uint32_t due = sa.last_seen_s + cfg_.idle_timeout;
    if (due > now_s_) return due;
    const std::uint32_t subscriber = sa.subscriber;
    free_sa(i);
    on_freed(subscriber);
    return 0;
  });
  // A learner that was never answered gives the next client its turn.
  for (std::uint32_t l = 0; learner_count_ != 0 && l < learners_.size(); ++l) {
    Learner& L = learners_[l];
    if (L.sa == nat::no_index || L.deadline_ms > now_ms) continue;
    const be32 out_addr = L.out_addr, server = L.server;
    ++counters_.learn_timeouts;
    if (next_in_line(L, now_ms)) continue;
    end_learning(l);
    release_held(out_addr, server, now_ms);
  }
  if (held_count_ == 0) return;
  for (Held& h : held_) {
    if (h.state == Held::State::held && h.expires_ms <= now_ms) {
      h.state = Held::State::free;
      --held_count_;
      ++counters_.drop_hold_timeout;
      pending_unpinned_.push_back(h.subscriber);
    }
  }
}

template <typename Emit>
void EspTracker::drain_released(Emit&& emit) {
  if (released_ == 0) return;
  // In arrival order, so a client's packets keep their sequence.
  for (;;) {
    Held* next = nullptr;
    for (Held& h : held_)
      if (h.state == Held::State::ready && (!next || h.order < next->order)) next = &h;
    if (!next) break;
    const std::size_t index = static_cast<std::size_t>(next - held_.data());
    emit(std::span<std::uint8_t>(held_bytes_.data() + index * slot_bytes, next->length));
    next->state = Held::State::free;
    --released_;
    --held_count_;
    ++counters_.released;
  }
}

}  // namespace passgate::passthrough
