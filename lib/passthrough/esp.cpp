#include "passthrough/esp.hpp"

#include <algorithm>
#include <cstring>

#include "packet/checksum.hpp"
#include "packet/headers.hpp"

namespace passgate::passthrough {

using table::no_index;
using packet::ChecksumDelta;
using packet::Ipv4Header;

namespace {
constexpr std::uint64_t tag_out = 5ull << 40, tag_in = 6ull << 40, tag_learner = 7ull << 40;
std::uint32_t learner_capacity(std::uint32_t sas) { return std::clamp<std::uint32_t>(sas / 4, 64, 65536); }
}  // namespace

EspTracker::EspTracker(const EspConfig& cfg, const table::FlowHasher& hasher, stats::NatCounters& counters)
    : cfg_(cfg),
      hasher_(hasher),
      counters_(counters),
      by_out_(cfg.max_sas),
      by_in_(cfg.max_sas),
      wheel_(cfg.max_sas, cfg.idle_timeout),
      learner_table_(learner_capacity(cfg.max_sas)),
      window_links_(learner_capacity(cfg.max_sas)),
      turn_links_(learner_capacity(cfg.max_sas)),
      wait_links_(cfg.hold_packets),
      age_links_(cfg.hold_packets) {
  sas_.resize(cfg.max_sas);
  free_sas_.resize(cfg.max_sas);
  for (std::uint32_t i = 0; i < cfg.max_sas; ++i) free_sas_[i] = cfg.max_sas - 1 - i;
  const std::uint32_t nl = learner_capacity(cfg.max_sas);
  learners_.resize(nl, Learner{{}, {}, {}, no_index, 0, 0, {}, 0, false, false, 0, {}});
  free_learners_.resize(nl);
  for (std::uint32_t i = 0; i < nl; ++i) free_learners_[i] = nl - 1 - i;
  held_.resize(cfg.hold_packets);
  held_bytes_.resize(std::size_t{cfg.hold_packets} * slot_bytes);
  free_held_.resize(cfg.hold_packets);
  for (std::uint32_t i = 0; i < cfg.hold_packets; ++i) free_held_[i] = cfg.hold_packets - 1 - i;
  // One entry per held packet leaving the hold, plus the packets a release
  // creates SAs for, between two takes: at most hold_packets each.
  pending_created_.reserve(cfg.hold_packets);
  pending_unpinned_.reserve(cfg.hold_packets);
}

std::uint64_t EspTracker::key_out(be32 in_addr, be32 server, be32 spi) const {
  return hasher_((std::uint64_t{in_addr.raw} << 32) | server.raw, spi.raw | tag_out);
}
std::uint64_t EspTracker::key_in(be32 out_addr, be32 server, be32 spi) const {
  return hasher_((std::uint64_t{out_addr.raw} << 32) | server.raw, spi.raw | tag_in);
}
std::uint64_t EspTracker::key_learner(be32 out_addr, be32 server) const {
  return hasher_((std::uint64_t{out_addr.raw} << 32) | server.raw, tag_learner);
}

std::uint32_t EspTracker::find_out(be32 in_addr, be32 server, be32 spi) const {
  return by_out_.find(key_out(in_addr, server, spi), [&](std::uint32_t i) {
    const Sa& s = sas_[i];
    return s.in_addr == in_addr && s.server == server && s.spi_out == spi;
  });
}
std::uint32_t EspTracker::find_in(be32 out_addr, be32 server, be32 spi) const {
  return by_in_.find(key_in(out_addr, server, spi), [&](std::uint32_t i) {
    const Sa& s = sas_[i];
    return s.bound && s.out_addr == out_addr && s.server == server && s.spi_in == spi;
  });
}
std::uint32_t EspTracker::find_learner(be32 out_addr, be32 server) const {
  return learner_table_.find(key_learner(out_addr, server), [&](std::uint32_t i) {
    const Learner& L = learners_[i];
    return L.used && L.out_addr == out_addr && L.server == server;
  });
}

void EspTracker::rewrite_out(std::uint8_t* ip, const Sa& sa) {
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->src = sa.out_addr;
  h->checksum = ChecksumDelta(sa.ip_delta).apply(h->checksum);
}
void EspTracker::rewrite_in(std::uint8_t* ip, const Sa& sa) {
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->dst = sa.in_addr;
  h->checksum = ChecksumDelta(sa.ip_delta).inverse().apply(h->checksum);
}

std::uint32_t EspTracker::create_sa(const packet::ParsedIpv4& p, be32 public_addr, std::uint32_t subscriber) {
  if (free_sas_.empty()) return no_index;
  const std::uint32_t i = free_sas_.back();
  if (!by_out_.insert(key_out(p.src, p.dst, p.esp_spi), i)) return no_index;
  free_sas_.pop_back();
  Sa& sa = sas_[i];
  sa.in_addr = p.src;
  sa.out_addr = public_addr;
  sa.server = p.dst;
  sa.spi_out = p.esp_spi;
  sa.spi_in = be32{0};
  sa.subscriber = subscriber;
  sa.last_seen_s = now_s_;
  sa.ip_delta = ChecksumDelta().add(p.src, public_addr).folded();
  sa.bound = false;
  sa.live = true;
  wheel_.schedule(i, now_s_ + cfg_.idle_timeout);
  ++sa_count_;
  counters_.add(stats::NatCounter::esp_sas_created);
  return i;
}

void EspTracker::start_learning(std::uint32_t sa, std::uint64_t now_ms) {
  const Sa& s = sas_[sa];
  std::uint32_t l = find_learner(s.out_addr, s.server);
  if (l == no_index) {
    if (free_learners_.empty()) return;  // the SA still works outbound; inbound will be unknown
    l = free_learners_.back();
    if (!learner_table_.insert(key_learner(s.out_addr, s.server), l)) return;
    free_learners_.pop_back();
    ++learner_count_;
    learners_[l] = Learner{s.out_addr, s.server, {}, no_index, 0, 0, {}, 0, true, false, 0, {}};
  }
  Learner& L = learners_[l];
  if (L.sa != no_index && L.client == s.in_addr) {
    // The same client is already waiting: this SA queues behind its own and
    // renews the window, within the turn (settle() and end_turn()).
    if (L.queued == std::size(L.queue)) {
      counters_.add(stats::NatCounter::esp_learn_queue_full);  // works outbound; its inbound SPI will be unknown
      return;
    }
    L.queue[L.queued++] = sa;
    L.window_ms = now_ms;
    window_links_.move_to_back(by_window_, l);
    return;
  }
  // outbound() holds another client's new SPI while one learns (after
  // settle()), so nobody should be learning here; if someone were, it ends.
  if (L.sa != no_index) unlink_learner(l);
  L.client = s.in_addr;
  L.sa = sa;
  L.window_ms = L.turn_ms = now_ms;
  L.queued = 0;
  L.overtime = false;
  window_links_.push_back(by_window_, l);
  turn_links_.push_back(by_turn_, l);
}

bool EspTracker::next_in_line(std::uint32_t l, std::uint64_t now_ms) {
  Learner& L = learners_[l];
  if (L.queued == 0) return false;
  L.sa = L.queue[0];
  for (std::uint8_t k = 1; k < L.queued; ++k) L.queue[k - 1] = L.queue[k];
  --L.queued;
  L.window_ms = now_ms;
  window_links_.move_to_back(by_window_, l);
  return true;
}

void EspTracker::settle(std::uint32_t l, std::uint64_t now_ms) {
  Learner& L = learners_[l];
  if (L.sa == no_index) return;
  if (L.window_ms + cfg_.learn_window_ms <= now_ms) {
    // Never answered: the client's next SA learns, or the next client.
    counters_.add(stats::NatCounter::esp_learn_timeouts);
    if (!next_in_line(l, now_ms)) {
      end_learning(l);
      release_held(l, now_ms);
      return;
    }
  }
  if (!L.overtime && L.turn_ms + cfg_.learner_turn() <= now_ms) {
    if (L.held != 0) {
      end_turn(l, now_ms);
      return;
    }
    // Nobody waits: go on, but the next other client will not be held.
    L.overtime = true;
    turn_links_.erase(by_turn_, l);
  }
}

void EspTracker::end_turn(std::uint32_t l, std::uint64_t now_ms) {
  counters_.add(stats::NatCounter::esp_learner_turns_ended);
  end_learning(l);
  release_held(l, now_ms);
}

void EspTracker::unlink_learner(std::uint32_t l) {
  Learner& L = learners_[l];
  window_links_.erase(by_window_, l);
  if (!L.overtime) turn_links_.erase(by_turn_, l);
  L.sa = no_index;
  L.queued = 0;  // SAs still waiting stay unbound: they work outbound, their inbound SPI is unknown
  L.overtime = false;
}

void EspTracker::end_learning(std::uint32_t l) {
  unlink_learner(l);
  free_learner_if_unused(l);
}

void EspTracker::free_learner_if_unused(std::uint32_t l) {
  Learner& L = learners_[l];
  if (!L.used || L.sa != no_index || L.held != 0) return;
  learner_table_.erase(key_learner(L.out_addr, L.server), l);
  L.used = false;
  free_learners_.push_back(l);
  --learner_count_;
}

void EspTracker::unhold(std::uint32_t k) {
  Held& h = held_[k];
  Learner& L = learners_[h.learner];
  wait_links_.erase(L.waiting, k);
  age_links_.erase(by_age_, k);
  --L.held;
  pending_unpinned_.push_back(h.subscriber);
}

void EspTracker::free_held(std::uint32_t k) {
  held_[k].state = Held::State::free;
  free_held_.push_back(k);
  --held_count_;
}

std::uint32_t EspTracker::free_sa(std::uint32_t i, std::uint64_t now_ms) {
  Sa& sa = sas_[i];
  by_out_.erase(key_out(sa.in_addr, sa.server, sa.spi_out), i);
  if (sa.bound) by_in_.erase(key_in(sa.out_addr, sa.server, sa.spi_in), i);
  std::uint32_t ended = no_index;
  const std::uint32_t l = find_learner(sa.out_addr, sa.server);
  if (l != no_index) {
    Learner& L = learners_[l];
    std::uint8_t kept = 0;
    for (std::uint8_t k = 0; k < L.queued; ++k)
      if (L.queue[k] != i) L.queue[kept++] = L.queue[k];
    L.queued = kept;
    if (L.sa == i && !next_in_line(l, now_ms)) {
      end_learning(l);
      ended = l;
    }
  }
  sa.live = false;
  free_sas_.push_back(i);
  --sa_count_;
  counters_.add(stats::NatCounter::esp_sas_expired);
  return ended;
}

EspTracker::Outcome EspTracker::hold(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint32_t l,
                                     std::uint32_t subscriber, std::uint64_t now_ms) {
  if (free_held_.empty() || p.total_length > slot_bytes) {
    return Outcome::drop_hold_full;
  }
  const std::uint32_t k = free_held_.back();
  free_held_.pop_back();
  std::memcpy(held_bytes_.data() + std::size_t{k} * slot_bytes, ip, p.total_length);
  held_[k] = Held{Held::State::held, p.src, l, subscriber, now_ms, p.total_length};
  Learner& L = learners_[l];
  wait_links_.push_back(L.waiting, k);
  age_links_.push_back(by_age_, k);
  ++L.held;
  ++held_count_;
  counters_.add(stats::NatCounter::esp_held);
  return Outcome::held;
}

EspTracker::Outcome EspTracker::outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 public_addr,
                                         std::uint32_t subscriber, std::uint64_t now_ms, bool& created,
                                         bool may_hold) {
  created = false;
  now_s_ = static_cast<std::uint32_t>(now_ms / 1000);
  if (!cfg_.enabled) {
    return Outcome::drop_disabled;
  }
  std::uint32_t i = find_out(p.src, p.dst, p.esp_spi);
  if (i == no_index) {
    // A new SPI. If another client behind this public address is waiting
    // for this server's first answer, binding would be ambiguous: hold.
    std::uint32_t l = find_learner(public_addr, p.dst);
    if (l != no_index) {
      settle(l, now_ms);
      const Learner& L = learners_[l];
      // A learner past its turn gives way to the first other client.
      if (L.used && L.sa != no_index && L.client != p.src && L.overtime) end_turn(l, now_ms);
      l = find_learner(public_addr, p.dst);
    }
    if (l != no_index && learners_[l].sa != no_index && learners_[l].client != p.src) {
      if (!may_hold) {
        return Outcome::drop_hold_full;
      }
      return hold(ip, p, l, subscriber, now_ms);
    }
    i = create_sa(p, public_addr, subscriber);
    if (i == no_index) {
      return Outcome::drop_table_full;
    }
    created = true;
    start_learning(i, now_ms);
  }
  Sa& sa = sas_[i];
  sa.last_seen_s = now_s_;
  rewrite_out(ip, sa);
  counters_.add(stats::NatCounter::esp_translated_outbound);
  return Outcome::forward;
}

EspTracker::Outcome EspTracker::inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms) {
  now_s_ = static_cast<std::uint32_t>(now_ms / 1000);
  if (!cfg_.enabled) {
    return Outcome::drop_disabled;
  }
  std::uint32_t i = find_in(p.dst, p.src, p.esp_spi);
  if (i == no_index) {
    // Not seen before: the answer to the one client waiting, if any.
    std::uint32_t l = find_learner(p.dst, p.src);
    if (l != no_index) {
      settle(l, now_ms);
      l = find_learner(p.dst, p.src);
    }
    if (l == no_index || learners_[l].sa == no_index) {
      return Outcome::drop_unknown_spi;
    }
    i = learners_[l].sa;
    Sa& sa = sas_[i];
    if (!by_in_.insert(key_in(sa.out_addr, sa.server, p.esp_spi), i)) {
      return Outcome::drop_table_full;
    }
    if (sa.bound) by_in_.erase(key_in(sa.out_addr, sa.server, sa.spi_in), i);
    sa.spi_in = p.esp_spi;
    sa.bound = true;
    counters_.add(stats::NatCounter::esp_spis_learned);
    if (!next_in_line(l, now_ms)) {
      end_learning(l);
      release_held(l, now_ms);
    }
  }
  Sa& sa = sas_[i];
  sa.last_seen_s = now_s_;
  rewrite_in(ip, sa);
  counters_.add(stats::NatCounter::esp_translated_inbound);
  return Outcome::forward;
}

void EspTracker::release_held(std::uint32_t l, std::uint64_t now_ms) {
  // Each packet handled leaves the pair's FIFO: at most held-count rounds.
  while (learners_[l].used && learners_[l].held != 0) {
    const Learner& L = learners_[l];
    const std::uint32_t k = L.waiting.head;
    Held& h = held_[k];
    if (L.sa != no_index && L.client != h.in_addr) break;  // someone learns again: the rest stay held
    const be32 out_addr = L.out_addr;
    const std::uint32_t subscriber = h.subscriber;
    unhold(k);
    std::uint8_t* bytes = held_bytes_.data() + std::size_t{k} * slot_bytes;
    packet::ParsedIpv4 p;
    if (packet::parse_ipv4(std::span<const std::uint8_t>(bytes, h.length), p) != packet::ParseError::ok) {
      free_held(k);
      continue;
    }
    // Not held again: the learner here is gone or this same client.
    bool created = false;
    const Outcome o = outbound(bytes, p, out_addr, subscriber, now_ms, created);
    if (o == Outcome::forward) {
      h.state = Held::State::ready;
      wait_links_.push_back(ready_, k);
      ++released_;
    } else {
      free_held(k);
    }
    if (created) pending_created_.push_back(subscriber);
  }
  free_learner_if_unused(l);
}

}  // namespace passgate::passthrough
