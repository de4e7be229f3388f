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
//
// No monopoly (issue 11.9). The learner's own further new SPIs queue behind
// its first and renew its learn window, so a client that keeps sending new
// SPIs (answered or not) could keep the role for ever. A client's turn is
// therefore bounded: learner_turn_ms (at least one learn window; twice it,
// 10 s, by default) after the turn started, if another client's packet
// waits, the role passes to the oldest waiting client; the SAs the first
// client still had waiting are not learned (they work outbound; their
// inbound SPI stays unknown until they rekey) and the cut is counted
// (learner_turns_ended). When nobody waits at that moment the client goes
// on learning, but the first other client that comes then takes the role
// at once instead of being held. A turn never ends before its first SA's
// learn window. Re-sending an SPI already seen renews nothing.
//
// Cost (issue 11.10): nothing scans. SAs expire through a timer wheel;
// learners sit in two FIFOs, by the start of their learn window and by the
// start of their turn (both spans are the same for every learner, so each
// FIFO is in deadline order); held packets sit in one FIFO per (public
// address, server) and one by arrival (their hold timeout order), released
// packets in one FIFO. Every step is O(1) per learner or packet it handles.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "table/flow_table.hpp"
#include "passthrough/config.hpp"
#include "table/timer_wheel.hpp"
#include "packet/parse.hpp"
#include "stats/nat_counters.hpp"

namespace passgate::passthrough {

using packet::be32;

class EspTracker {
 public:
  enum class Outcome : std::uint8_t { forward, held, drop_disabled, drop_unknown_spi, drop_hold_full, drop_table_full };

  EspTracker(const EspConfig& cfg, const table::FlowHasher& hasher, stats::NatCounters& counters);
  // A reload: new switches and timeouts; the table sizes stay those of the start.
  void update_config(const EspConfig& cfg) {
    EspConfig next = cfg;
    next.max_sas = cfg_.max_sas;
    next.hold_packets = cfg_.hold_packets;
    cfg_ = next;
  }


  // Outbound ESP from `p.src` leaving as `public_addr`. `subscriber` is the
  // engine's handle, given back when the SA ends. `created` tells the
  // engine a new SA now counts against the subscriber.
  // `may_hold` false: the subscriber already has its share of the hold
  // slots, so a packet that would be held is dropped (Outcome::drop_hold_full).
  Outcome outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 public_addr, std::uint32_t subscriber,
                   std::uint64_t now_ms, bool& created, bool may_hold = true);
  Outcome inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms);

  // Ages SAs, learners and held packets: at most `budget` of each per call,
  // O(what is due). on_freed(subscriber) for each SA that ends.
  template <typename OnFreed>
  void expire(std::uint64_t now_ms, unsigned budget, OnFreed&& on_freed);

  // Held packets now translated (to the outside): emit(bytes) each, in the
  // order they were released (per server, the order they arrived).
  template <typename Emit>
  void drain_released(Emit&& emit);
  [[nodiscard]] bool has_released() const { return released_ != 0; }

  [[nodiscard]] bool has_sa(be32 in_addr, be32 server, be32 spi) const {
    return find_out(in_addr, server, spi) != table::no_index;
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

  [[nodiscard]] std::uint32_t active_sas() const { return sa_count_; }
  [[nodiscard]] std::uint32_t learners() const { return learner_count_; }
  [[nodiscard]] std::uint32_t held_packets() const { return held_count_; }

 private:
  // FIFOs of indices threaded through one links array per kind of list
  // (doubly linked: O(1) removal anywhere). Whether a record is in a list
  // follows from its own state; the links do not say.
  class IndexLinks {
   public:
    struct Ends {
      std::uint32_t head = table::no_index, tail = table::no_index;
    };
    explicit IndexLinks(std::size_t n) : links_(n, Link{table::no_index, table::no_index}) {}
    void push_back(Ends& e, std::uint32_t i) {
      links_[i] = Link{e.tail, table::no_index};
      if (e.tail != table::no_index) links_[e.tail].next = i;
      else e.head = i;
      e.tail = i;
    }
    void erase(Ends& e, std::uint32_t i) {
      const Link l = links_[i];
      if (l.prev != table::no_index) links_[l.prev].next = l.next;
      else e.head = l.next;
      if (l.next != table::no_index) links_[l.next].prev = l.prev;
      else e.tail = l.prev;
    }
    void move_to_back(Ends& e, std::uint32_t i) {
      erase(e, i);
      push_back(e, i);
    }

   private:
    struct Link {
      std::uint32_t prev, next;
    };
    std::vector<Link> links_;
  };

  struct Sa {
    be32 in_addr, out_addr, server;
    be32 spi_out, spi_in;
    std::uint32_t subscriber;
    std::uint32_t last_seen_s;
    std::uint16_t ip_delta;  // outbound IPv4 checksum delta (in_addr -> out_addr)
    bool bound;              // spi_in known
    bool live;
  };
  // One per (public address, server) while a client learns there or packets
  // wait for it (used). In the window FIFO while learning (sa != no_index),
  // in the turn FIFO while learning and not in overtime.
  struct Learner {
    be32 out_addr, server, client;
    std::uint32_t sa;          // the client's oldest SA waiting for an answer; no_index = nobody learns
    std::uint64_t window_ms;   // start of sa's learn window (renewed by the client's further new SPIs)
    std::uint64_t turn_ms;     // start of this client's turn (never renewed)
    // The same client's further new SAs to this server (several devices
    // behind one CPE, or several child SAs), answered in the order sent.
    std::uint32_t queue[3];
    std::uint8_t queued;
    bool used;                 // in learner_table_
    bool overtime;             // turn over while nobody waited: the next other client takes the role
    std::uint32_t held;        // packets held for this pair, in `waiting` oldest first
    IndexLinks::Ends waiting;
  };
  struct Held {
    enum class State : std::uint8_t { free, held, ready } state = State::free;
    be32 in_addr;
    std::uint32_t learner;  // the (public address, server) slot it waits on
    std::uint32_t subscriber;
    std::uint64_t since_ms;
    std::uint16_t length;
  };

  std::uint64_t key_out(be32 in_addr, be32 server, be32 spi) const;
  std::uint64_t key_in(be32 out_addr, be32 server, be32 spi) const;
  std::uint64_t key_learner(be32 out_addr, be32 server) const;
  std::uint32_t find_out(be32 in_addr, be32 server, be32 spi) const;
  std::uint32_t find_in(be32 out_addr, be32 server, be32 spi) const;
  std::uint32_t find_learner(be32 out_addr, be32 server) const;
  std::uint32_t create_sa(const packet::ParsedIpv4& p, be32 public_addr, std::uint32_t subscriber);
  Outcome hold(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint32_t learner, std::uint32_t subscriber,
               std::uint64_t now_ms);
  void start_learning(std::uint32_t sa, std::uint64_t now_ms);
  // Applies what is due on a learner slot at now_ms, as expire() would have:
  // the front SA's learn window, then the turn limit.
  void settle(std::uint32_t learner, std::uint64_t now_ms);
  // The turn limit: the client's waiting SAs are dropped from the queue and
  // the role passes to the oldest held packet's client.
  void end_turn(std::uint32_t learner, std::uint64_t now_ms);
  void end_learning(std::uint32_t learner);
  void unlink_learner(std::uint32_t learner);
  void free_learner_if_unused(std::uint32_t learner);
  // The learner's front SA got its answer or went away: the next waiting SA
  // of the same client learns next; false when none is left.
  bool next_in_line(std::uint32_t learner, std::uint64_t now_ms);
  // Nobody (or the same client) learns at `learner`: its held packets go, in
  // arrival order, until one of another client's makes that client learner.
  void release_held(std::uint32_t learner, std::uint64_t now_ms);
  // Takes a held packet out of its waiting lists; its pin is given back.
  void unhold(std::uint32_t k);
  void free_held(std::uint32_t k);
  // Frees the SA; returns the learner slot whose held packets may now go
  // (no_index if none).
  std::uint32_t free_sa(std::uint32_t sa, std::uint64_t now_ms);
  static void rewrite_out(std::uint8_t* ip, const Sa& sa);
  static void rewrite_in(std::uint8_t* ip, const Sa& sa);

  EspConfig cfg_;
  table::FlowHasher hasher_;
  stats::NatCounters& counters_;  // the engine's: counted where it happens
  std::vector<Sa> sas_;
  std::vector<std::uint32_t> free_sas_;
  table::FlowTable by_out_, by_in_;
  table::TimerWheel wheel_;
  std::vector<Learner> learners_;
  std::vector<std::uint32_t> free_learners_;
  table::FlowTable learner_table_;
  IndexLinks window_links_, turn_links_;  // over learners_
  IndexLinks::Ends by_window_, by_turn_;
  std::vector<Held> held_;
  std::vector<std::uint8_t> held_bytes_;
  std::vector<std::uint32_t> free_held_;
  IndexLinks wait_links_, age_links_;  // over held_: per-pair waiting (then the ready FIFO), and by arrival
  IndexLinks::Ends by_age_, ready_;
  std::uint32_t sa_count_ = 0, learner_count_ = 0, held_count_ = 0, released_ = 0;
  std::uint32_t now_s_ = 0;
  std::vector<std::uint32_t> pending_created_;   // capacity hold_packets, reserved up front
  std::vector<std::uint32_t> pending_unpinned_;  // likewise

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
    const std::uint32_t learner = free_sa(i, now_ms);
    on_freed(subscriber);
    // Its learner went with it: the packets held meanwhile get their turn.
    if (learner != table::no_index) release_held(learner, now_ms);
    return 0;
  });
  // A learner never answered gives the next client its turn; a turn that
  // ran its length passes on. The heads of the two FIFOs are the next due.
  for (unsigned n = 0; n < budget && by_window_.head != table::no_index; ++n) {
    const std::uint32_t l = by_window_.head;
    if (learners_[l].window_ms + cfg_.learn_window_ms > now_ms) break;
    settle(l, now_ms);
  }
  for (unsigned n = 0; n < budget && by_turn_.head != table::no_index; ++n) {
    const std::uint32_t l = by_turn_.head;
    if (learners_[l].turn_ms + cfg_.learner_turn() > now_ms) break;
    settle(l, now_ms);
  }
  for (unsigned n = 0; n < budget && by_age_.head != table::no_index; ++n) {
    const std::uint32_t k = by_age_.head;
    if (held_[k].since_ms + cfg_.hold_window_ms > now_ms) break;
    counters_.add(stats::DropReason::esp_hold_timeout);
    const std::uint32_t l = held_[k].learner;
    unhold(k);
    free_held(k);
    free_learner_if_unused(l);
  }
}

template <typename Emit>
void EspTracker::drain_released(Emit&& emit) {
  while (ready_.head != table::no_index) {
    const std::uint32_t k = ready_.head;
    wait_links_.erase(ready_, k);
    emit(std::span<std::uint8_t>(held_bytes_.data() + std::size_t{k} * slot_bytes, held_[k].length));
    --released_;
    free_held(k);
  }
}

}  // namespace passgate::passthrough
