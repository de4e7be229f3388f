// check_invariants(): every table, free list, count and cross reference of
// the engine agrees with the others. Run by the tests after every operation
// and by the fuzzers after every input; never on the packet path.
#include "nat/engine_internal.hpp"
#include "nat/mark_free.hpp"

#include <fmt/format.h>
#include <array>

namespace passgate::nat {

// Marks the slots of a free list; false (with the reason in *why) when an
// index repeats or is out of range: a double free.
std::string Engine::Impl::check_invariants(const Engine& e) {
  std::string why;
  std::vector<std::uint8_t> free_session, free_mapping, free_subscriber;
  if (!mark_free(e.free_sessions_, e.sessions_.size(), free_session, "session", &why) ||
      !mark_free(e.free_mappings_, e.mappings_.size(), free_mapping, "mapping", &why) ||
      !mark_free(e.free_subscribers_, e.subscribers_.size(), free_subscriber, "subscriber", &why))
    return why;
  if (e.free_sessions_.size() + e.session_count_ != e.sessions_.size())
    return fmt::format("session count {} + free {} != capacity {}", e.session_count_, e.free_sessions_.size(),
                       e.sessions_.size());
  if (e.free_mappings_.size() + e.mapping_count_ != e.mappings_.size())
    return fmt::format("mapping count {} + free {} != capacity {}", e.mapping_count_, e.free_mappings_.size(),
                       e.mappings_.size());
  if (e.free_subscribers_.size() + e.subscriber_count_ != e.subscribers_.size())
    return fmt::format("subscriber count {} + free {} != capacity {}", e.subscriber_count_,
                       e.free_subscribers_.size(), e.subscribers_.size());
  if (e.in2out_.size() != e.session_count_ || e.out2in_.size() != e.session_count_)
    return fmt::format("session indexes hold {}/{} entries for {} sessions", e.in2out_.size(), e.out2in_.size(),
                       e.session_count_);
  if (e.mapping_in_.size() != e.mapping_count_ || e.mapping_out_.size() != e.mapping_count_)
    return fmt::format("mapping indexes hold {}/{} entries for {} mappings", e.mapping_in_.size(),
                       e.mapping_out_.size(), e.mapping_count_);
  if (e.subscriber_table_.size() != e.subscriber_count_)
    return fmt::format("subscriber index holds {} entries for {} subscribers", e.subscriber_table_.size(),
                       e.subscriber_count_);

  // What each subscriber should count, rebuilt from the objects that refer to it.
  const std::size_t nsub = e.subscribers_.size();
  std::vector<std::uint32_t> sessions(nsub, 0), preserved(nsub, 0), esp_held(nsub, 0), blocks(nsub, 0);
  const auto live_subscriber = [&](std::uint32_t sub, const char* holder) -> bool {
    if (sub < nsub && !free_subscriber[sub]) return true;
    why = fmt::format("{} refers to subscriber slot {} which is not live", holder, sub);
    return false;
  };

  std::array<std::uint32_t, proto_count> per_proto{};
  std::vector<std::uint32_t> mapping_sessions(e.mappings_.size(), 0);
  for (std::uint32_t i = 0; i < e.sessions_.size(); ++i) {
    if (free_session[i]) continue;
    const Session& s = e.sessions_[i];
    if (find_in2out(e, hash_in(e, s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port), s.proto, s.in_addr,
                    s.in_port, s.rem_addr, s.rem_port) != i)
      return fmt::format("session {} not found by its inside key", i);
    if (find_out2in(e, hash_in(e, s.proto, s.out_addr, s.out_port, s.rem_addr, s.rem_port), s.proto, s.out_addr,
                    s.out_port, s.rem_addr, s.rem_port) != i)
      return fmt::format("session {} not found by its outside key", i);
    if (s.mapping >= e.mappings_.size() || free_mapping[s.mapping])
      return fmt::format("session {} refers to mapping {} which is not live", i, s.mapping);
    const Mapping& m = e.mappings_[s.mapping];
    if (m.in_addr != s.in_addr || m.in_port != s.in_port || m.out_addr != s.out_addr || m.out_port != s.out_port ||
        m.proto != s.proto)
      return fmt::format("session {} does not match its mapping {}", i, s.mapping);
    ++mapping_sessions[s.mapping];
    ++per_proto[static_cast<unsigned>(s.proto)];
    if (m.subscriber != no_index) {
      if (!live_subscriber(m.subscriber, "a session's mapping")) return why;
      ++sessions[m.subscriber];
    }
  }
  for (unsigned p = 0; p < proto_count; ++p) {
    const stats::ProtoCounters& c = e.counters_.proto[p];
    if (c.sessions_created - c.sessions_expired != per_proto[p])
      return fmt::format("{} gauge (created {} - expired {}) != {} live sessions", to_string(static_cast<Proto>(p)),
                         c.sessions_created, c.sessions_expired, per_proto[p]);
  }

  // Address-dependent filter index: each entry counts the flagged sessions of its (mapping, remote).
  {
    std::vector<std::uint8_t> free_remote;
    if (!mark_free(e.free_remotes_, e.remotes_.size(), free_remote, "remote entry", &why)) return why;
    std::vector<std::uint32_t> remote_sessions(e.remotes_.size(), 0);
    for (std::uint32_t i = 0; i < e.sessions_.size(); ++i) {
      if (free_session[i] || !(e.sessions_[i].flags & session_flag::adf_counted)) continue;
      const Session& s = e.sessions_[i];
      const std::uint32_t r = find_remote(e, s.proto, s.out_addr, s.out_port, s.rem_addr);
      if (r == no_index) return fmt::format("session {} is counted for address-dependent filtering but has no entry", i);
      ++remote_sessions[r];
    }
    for (std::uint32_t r = 0; r < e.remotes_.size(); ++r)
      if (!free_remote[r] && e.remotes_[r].sessions != remote_sessions[r])
        return fmt::format("remote entry {} counts {} sessions, {} exist", r, e.remotes_[r].sessions,
                           remote_sessions[r]);
  }

  std::vector<BlockAllocator::PortCounts> block_used(e.blocks_.block_count(), {0, 0, 0});
  for (std::uint32_t m = 0; m < e.mappings_.size(); ++m) {
    if (free_mapping[m]) continue;
    const Mapping& map = e.mappings_[m];
    if (find_mapping_in(e, hash_mapping(e, map.proto, map.in_addr, map.in_port), map.proto, map.in_addr,
                        map.in_port) != m ||
        find_mapping_out(e, hash_mapping(e, map.proto, map.out_addr, map.out_port), map.proto, map.out_addr,
                         map.out_port) != m)
      return fmt::format("mapping {} not found by both of its keys", m);
    if (map.sessions != mapping_sessions[m])
      return fmt::format("mapping {} counts {} sessions, {} refer to it", m, map.sessions, mapping_sessions[m]);
    std::uint32_t listed = 0, prev = no_index;
    for (std::uint32_t i = map.first_session; i != no_index; i = e.sessions_[i].mapping_next) {
      if (i >= e.sessions_.size() || free_session[i] || e.sessions_[i].mapping != m ||
          e.sessions_[i].mapping_prev != prev || ++listed > map.sessions)
        return fmt::format("mapping {}'s session list is broken at session {}", m, i);
      prev = i;
    }
    if (listed != map.sessions) return fmt::format("mapping {} lists {} of its {} sessions", m, listed, map.sessions);
    if (map.is_static) {
      if (map.subscriber == no_index) continue;
      if (map.sessions == 0) return fmt::format("static mapping {} keeps a subscriber without sessions", m);
      if (!live_subscriber(map.subscriber, "a static mapping")) return why;
      if (e.subscribers_[map.subscriber].addr != map.in_addr)
        return fmt::format("static mapping {} counts its sessions against another host", m);
      continue;
    }
    if (!live_subscriber(map.subscriber, "a mapping")) return why;
    const Subscriber& sub = e.subscribers_[map.subscriber];
    if (map.out_addr != e.blocks_.address(sub.address).addr)
      return fmt::format("mapping {} leaves from another address than its subscriber's (RFC 6888 REQ-2)", m);
    if (map.preserved) {
      ++preserved[map.subscriber];
      continue;
    }
    const std::uint32_t b = block_of_port(e, e.blocks_.address(sub.address), map.out_port.host());
    if (b == no_index || e.blocks_.block(b).subscriber != map.subscriber)
      return fmt::format("mapping {} uses port {} outside its subscriber's blocks", m, map.out_port.host());
    ++block_used[b][static_cast<unsigned>(map.proto)];
  }

  // Port blocks (block_allocator.cpp), each owner counted here for the subscriber check below.
  if (std::string t = e.blocks_.check_invariants(
          block_used,
          [&](std::uint32_t sub, BlockAllocator::Owner& owner) -> std::string {
            if (!live_subscriber(sub, "a port block")) return why;
            ++blocks[sub];
            owner = BlockAllocator::Owner{e.subscribers_[sub].address, e.subscribers_[sub].blocks};
            return {};
          });
      !t.empty())
    return t;

  bool esp_ok = true;
  e.esp_.for_each_reference(
      [&](std::uint32_t sub) {
        if (esp_ok && !live_subscriber(sub, "an ESP SA")) esp_ok = false;
        else if (esp_ok) ++sessions[sub];
      },
      [&](std::uint32_t sub) {
        if (esp_ok && !live_subscriber(sub, "a held ESP packet")) esp_ok = false;
        else if (esp_ok) ++esp_held[sub];
      });
  if (!esp_ok) return why;
  bool gre_ok = true;
  e.gre_.for_each_subscriber([&](std::uint32_t sub) {
    if (gre_ok && !live_subscriber(sub, "a GRE tunnel")) gre_ok = false;
    else if (gre_ok) ++sessions[sub];
  });
  if (!gre_ok) return why;
  bool pptp_ok = true;
  e.pptp_.for_each_subscriber([&](std::uint32_t sub) {
    if (pptp_ok && !live_subscriber(sub, "a PPTP call")) pptp_ok = false;
    else if (pptp_ok) ++sessions[sub];
  });
  if (!pptp_ok) return why;
  e.pptp_.for_each_control([&](std::uint32_t session) {
    if (pptp_ok && (session >= e.sessions_.size() || free_session[session] ||
                    !(e.sessions_[session].flags & session_flag::pptp_control))) {
      why = fmt::format("PPTP control record of session {} which is not a live control session", session);
      pptp_ok = false;
    }
  });
  if (!pptp_ok) return why;
  if (std::string t = e.pptp_.check_invariants(); !t.empty()) return "PPTP: " + t;

  std::vector<std::uint32_t> pool_subscribers(e.pools_.size(), 0);
  for (std::uint32_t i = 0; i < nsub; ++i) {
    if (free_subscriber[i]) continue;
    const Subscriber& s = e.subscribers_[i];
    if (find_subscriber(e, s.addr) != i) return fmt::format("subscriber {} not found by its address", i);
    if (s.pool >= e.pools_.size() || s.address >= e.blocks_.address_count() ||
        e.blocks_.address(s.address).pool != s.pool)
      return fmt::format("subscriber {} has an inconsistent pool or address", i);
    ++pool_subscribers[s.pool];
    if (s.sessions != sessions[i])
      return fmt::format("subscriber {} counts {} sessions, {} exist (sessions, ESP SAs, GRE tunnels, PPTP calls)",
                         to_string(s.addr), s.sessions, sessions[i]);
    if (s.blocks != blocks[i])
      return fmt::format("subscriber {} counts {} blocks, owns {}", to_string(s.addr), s.blocks, blocks[i]);
    if (s.preserved != preserved[i])
      return fmt::format("subscriber {} counts {} preserved ports, holds {}", to_string(s.addr), s.preserved,
                         preserved[i]);
    if (s.esp_held != esp_held[i])
      return fmt::format("subscriber {} counts {} held ESP packets, {} are held", to_string(s.addr), s.esp_held,
                         esp_held[i]);
    if (s.blocks == 0 && s.sessions == 0 && s.preserved == 0 && s.esp_held == 0)
      return fmt::format("subscriber {} holds nothing but was not released", to_string(s.addr));
  }
  if (std::string fragments = e.fragments_.check_invariants(); !fragments.empty()) return fragments;
  for (std::uint32_t p = 0; p < e.pools_.size(); ++p)
    if (e.pools_[p].subscribers != pool_subscribers[p])
      return fmt::format("pool {} counts {} subscribers, {} exist", e.pools_[p].config.name, e.pools_[p].subscribers,
                         pool_subscribers[p]);
  return {};
}

std::string Engine::check_invariants() const { return Impl::check_invariants(*this); }

}  // namespace passgate::nat
