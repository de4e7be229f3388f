// NAT event export: the IPFIX encoder byte by byte (RFC 7011 message and set
// lengths, sequence numbers, template refresh, the message size limit,
// RFC 8158 elements), the RFC 5424 syslog lines and the gateway's own log.
// RFC 6888 REQ-12: destinations only when configured. The exporters against
// real collectors are in tests/integration/collectors_test.cpp.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/ipfix_exporter.hpp"
#include "control/log.hpp"
#include "control/syslog_exporter.hpp"
#include "control/udp_sender.hpp"
#include "nat/deterministic.hpp"
#include "support/nat_events.hpp"

extern char** environ;

namespace passgate::control {
namespace {

using nat::NatEvent;
using packet::be16;
using packet::ipv4;
using Type = NatEvent::Type;
using namespace testing::nat_events;

// ------------------------------------------------------------ an independent IPFIX reader

std::uint64_t read_be(const std::vector<std::uint8_t>& b, std::size_t at, unsigned bytes) {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < bytes; ++i) v = (v << 8) | b.at(at + i);
  return v;
}

struct Set {
  std::uint16_t id;
  std::size_t offset, length;  // of the whole set, header included
};

struct Message {
  std::uint16_t version, length;
  std::uint32_t export_time, sequence, domain;
  std::vector<Set> sets;
};

// Walks a message by its length fields; fails the test when they do not add up.
Message parse(const std::vector<std::uint8_t>& b) {
  Message m{};
  EXPECT_GE(b.size(), 16u);
  if (b.size() < 16) return m;
  m.version = static_cast<std::uint16_t>(read_be(b, 0, 2));
  m.length = static_cast<std::uint16_t>(read_be(b, 2, 2));
  m.export_time = static_cast<std::uint32_t>(read_be(b, 4, 4));
  m.sequence = static_cast<std::uint32_t>(read_be(b, 8, 4));
  m.domain = static_cast<std::uint32_t>(read_be(b, 12, 4));
  EXPECT_EQ(m.length, b.size()) << "header length is the whole message (RFC 7011 section 3.1)";
  std::size_t at = 16;
  while (at + 4 <= b.size()) {
    const Set s{static_cast<std::uint16_t>(read_be(b, at, 2)), at, static_cast<std::size_t>(read_be(b, at + 2, 2))};
    EXPECT_GE(s.length, 4u);
    if (s.length < 4 || at + s.length > b.size()) {
      ADD_FAILURE() << "set length " << s.length << " at " << at << " runs past the message";
      break;
    }
    m.sets.push_back(s);
    at += s.length;
  }
  EXPECT_EQ(at, b.size()) << "the sets fill the message exactly";
  return m;
}

using Template = std::vector<ipfix::FieldSpec>;
using Record = std::map<std::uint16_t, std::uint64_t>;  // element id -> value

// Decodes a whole stream: templates as they come, data records with the
// templates known at that point, in order.
struct Stream {
  std::map<std::uint16_t, Template> templates;
  std::vector<std::pair<std::uint16_t, Record>> records;  // template id, values
  std::vector<std::map<std::uint16_t, std::string>> texts;  // per record: its variable-length fields

  void feed(const std::vector<std::uint8_t>& b) {
    const Message m = parse(b);
    for (const Set& s : m.sets) {
      std::size_t at = s.offset + 4;
      const std::size_t end = s.offset + s.length;
      if (s.id == ipfix::template_set_id) {
        while (at + 4 <= end) {
          const auto id = static_cast<std::uint16_t>(read_be(b, at, 2));
          const auto count = read_be(b, at + 2, 2);
          at += 4;
          Template t;
          for (std::uint64_t i = 0; i < count; ++i, at += 4) {
            const auto raw = static_cast<std::uint16_t>(read_be(b, at, 2));
            ipfix::FieldSpec f{static_cast<std::uint16_t>(raw & 0x7fff), static_cast<std::uint16_t>(read_be(b, at + 2, 2))};
            if (raw & 0x8000) {  // RFC 7011 section 3.2: an enterprise number follows
              f.enterprise = static_cast<std::uint32_t>(read_be(b, at + 4, 4));
              at += 4;
            }
            t.push_back(f);
          }
          templates[id] = t;
        }
        EXPECT_EQ(at, end) << "template set fully used";
      } else {
        ASSERT_TRUE(templates.count(s.id)) << "data set " << s.id << " before its template";
        const Template& t = templates[s.id];
        std::size_t size = 0;
        bool variable = false;
        for (const auto& f : t) {
          if (f.length == ipfix::variable_length) variable = true;
          else size += f.length;
        }
        if (!variable) EXPECT_EQ((end - at) % size, 0u) << "no padding, whole records only";
        while (at + size <= end) {
          Record r;
          std::map<std::uint16_t, std::string> text;
          for (const auto& f : t) {
            if (f.length == ipfix::variable_length) {  // RFC 7011 section 7
              std::size_t n = read_be(b, at, 1);
              at += 1;
              if (n == 255) {
                n = read_be(b, at, 2);
                at += 2;
              }
              ASSERT_LE(at + n, end) << "a variable-length field runs past its set";
              text[f.id].assign(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
              r[f.id] = n;
              at += n;
              continue;
            }
            r[f.id] = read_be(b, at, f.length);
            at += f.length;
          }
          records.emplace_back(s.id, r);
          texts.push_back(std::move(text));
        }
        EXPECT_EQ(at, end) << "whole records only";
      }
    }
  }
};

std::uint32_t data_records_in(const std::vector<std::uint8_t>& b, const Stream& known) {
  Stream s = known;
  const std::size_t before = s.records.size();
  s.feed(b);
  return static_cast<std::uint32_t>(s.records.size() - before);
}

// ------------------------------------------------------------ IPFIX encoding

TEST(IpfixEncode, NatEventValuesFollowRfc8158) {
  // RFC 8158 section 4.3 (IANA "NAT Event Type"): 1 and 2 are historic.
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::pool_exhausted)), 3);
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::session_created)), 4);
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::session_deleted)), 5);
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::port_preserved)), 8);
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::port_released)), 9);
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::ports_exhausted)), 12);
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::session_limit)), 13);
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::block_allocated)), 16);
  EXPECT_EQ(static_cast<int>(ipfix::nat_event_value(Type::block_released)), 17);
}

TEST(IpfixEncode, BlockAllocationMessage) {
  IpfixConfig config;
  config.observation_domain_id = 77;
  const std::vector<NatEvent> events{block(Type::block_allocated, t0, inside_a, 1024, 1535)};
  const std::vector<IpfixMessage> out = encode_ipfix(events, config, t0 + 500);
  ASSERT_EQ(out.size(), 2u) << "a template message, then the data";

  const Message tm = parse(out[0].bytes);
  EXPECT_EQ(tm.version, 10);
  EXPECT_EQ(tm.domain, 77u);
  EXPECT_EQ(tm.sequence, 0u);
  EXPECT_EQ(tm.export_time, (t0 + 500) / 1000);
  ASSERT_EQ(tm.sets.size(), 1u);
  EXPECT_EQ(tm.sets[0].id, 2) << "template set";
  EXPECT_EQ(out[0].data_records, 0u);

  Stream s;
  s.feed(out[0].bytes);
  // Without log_destination there is no template with destination fields.
  EXPECT_EQ(s.templates.size(), ipfix::shape_count - 1);
  const Template& bt = s.templates.at(ipfix::template_id(ipfix::Shape::block));
  const std::vector<std::uint16_t> ids{323, 230, 8, 225, 361, 362, 363, 364, 283};
  ASSERT_EQ(bt.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(bt[i].id, ids[i]) << "field " << i;

  const Message dm = parse(out[1].bytes);
  EXPECT_EQ(dm.sequence, 0u) << "no data record before this message";
  EXPECT_EQ(dm.length, 16 + 4 + ipfix::record_bytes(ipfix::Shape::block));
  ASSERT_EQ(dm.sets.size(), 1u);
  EXPECT_EQ(dm.sets[0].id, 256 + 2);
  EXPECT_EQ(out[1].data_records, 1u);
  s.feed(out[1].bytes);
  ASSERT_EQ(s.records.size(), 1u);
  Record r = s.records[0].second;
  EXPECT_EQ(r[323], t0);
  EXPECT_EQ(r[230], 16u);
  EXPECT_EQ(r[8], inside_a.host());
  EXPECT_EQ(r[225], public_1.host());
  EXPECT_EQ(r[361], 1024u);
  EXPECT_EQ(r[362], 1535u);
  EXPECT_EQ(r[363], 1u);
  EXPECT_EQ(r[364], 512u);
  EXPECT_EQ(r[283], 3u);
}

TEST(IpfixEncode, PortStepAndEveryShape) {
  const std::vector<NatEvent> events{
      block(Type::block_released, t0, inside_a, 2000, 2254, 2),  // 2000, 2002, ... 2254
      limit(Type::ports_exhausted, t0 + 1, inside_a),
      limit(Type::session_limit, t0 + 2, inside_b),
      preserved(Type::port_preserved, t0 + 3, inside_b, 500, 17),
      session(Type::session_created, t0 + 4, inside_a, 5000, 1100),
  };
  Stream s;
  for (const IpfixMessage& m : encode_ipfix(events, IpfixConfig{}, t0 + 10)) s.feed(m.bytes);
  ASSERT_EQ(s.records.size(), events.size());
  EXPECT_EQ(s.records[0].second.at(364), 128u);
  EXPECT_EQ(s.records[0].second.at(363), 2u);
  EXPECT_EQ(s.records[0].second.at(230), 17u);
  EXPECT_EQ(s.records[1].second.at(230), 12u);
  EXPECT_EQ(s.records[1].second.at(225), public_1.host());
  EXPECT_EQ(s.records[2].second.at(230), 13u);
  EXPECT_EQ(s.records[2].second.at(466), 3u) << "natQuotaExceededEvent: maximum entries per user";
  EXPECT_EQ(s.records[3].second.at(230), 8u);
  EXPECT_EQ(s.records[3].second.at(4), 17u);
  EXPECT_EQ(s.records[3].second.at(7), 500u) << "a preserved port keeps the inside port";
  EXPECT_EQ(s.records[3].second.at(227), 500u);
  EXPECT_EQ(s.records[4].second.at(7), 5000u);
  EXPECT_EQ(s.records[4].second.at(227), 1100u);
  // One template per shape: the preserved port and the session share one.
  EXPECT_EQ(s.records[3].first, s.records[4].first);
}

TEST(IpfixEncode, DestinationsOnlyWhenConfigured) {
  const std::vector<NatEvent> events{session(Type::session_created, t0, inside_a, 5000, 1100),
                                     session(Type::session_deleted, t0 + 9000, inside_a, 5000, 1100)};
  const auto contains_remote = [](const std::vector<IpfixMessage>& out) {
    const std::uint8_t needle[4] = {198, 51, 100, 7};
    for (const IpfixMessage& m : out)
      if (std::search(m.bytes.begin(), m.bytes.end(), needle, needle + 4) != m.bytes.end()) return true;
    return false;
  };

  IpfixConfig config;
  const std::vector<IpfixMessage> hidden = encode_ipfix(events, config, t0 + 9000);
  EXPECT_FALSE(contains_remote(hidden)) << "RFC 6888 REQ-12: no destination by default";
  Stream s;
  for (const IpfixMessage& m : hidden) s.feed(m.bytes);
  for (const auto& [id, t] : s.templates)
    for (const auto& f : t) {
      EXPECT_NE(f.id, ipfix::ie::destinationIPv4Address) << "template " << id;
      EXPECT_NE(f.id, ipfix::ie::destinationTransportPort) << "template " << id;
    }
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].second.at(230), 4u);
  EXPECT_EQ(s.records[1].second.at(230), 5u);

  config.log_destination = true;
  const std::vector<IpfixMessage> shown = encode_ipfix(events, config, t0 + 9000);
  EXPECT_TRUE(contains_remote(shown));
  Stream d;
  for (const IpfixMessage& m : shown) d.feed(m.bytes);
  ASSERT_EQ(d.records.size(), 2u);
  EXPECT_EQ(d.records[0].first, ipfix::template_id(ipfix::Shape::session_destination));
  EXPECT_EQ(d.records[0].second.at(12), remote.host());
  EXPECT_EQ(d.records[0].second.at(226), remote.host());
  EXPECT_EQ(d.records[0].second.at(11), 443u);
  EXPECT_EQ(d.records[0].second.at(228), 443u);
}

// RFC 7011 sections 3.1 and 10.3.2: the sequence number counts the data
// records sent before the message; templates do not count. The message size
// limit splits the records into several messages.
TEST(IpfixEncode, SizeLimitSplitsAndSequenceCountsRecords) {
  IpfixConfig config;
  config.max_message_bytes = 300;
  std::vector<NatEvent> events;
  for (std::uint16_t i = 0; i < 60; ++i) {
    // Alternate shapes so sets open and close inside messages.
    if (i % 3 == 2) events.push_back(session(Type::session_created, t0 + i, inside_a, 5000 + i, 1100 + i));
    else events.push_back(block(Type::block_allocated, t0 + i, inside_a, static_cast<std::uint16_t>(1024 + 512 * (i % 4)),
                                static_cast<std::uint16_t>(1535 + 512 * (i % 4))));
  }
  IpfixEncoder encoder(config);
  std::vector<IpfixMessage> out;
  for (const NatEvent& e : events) encoder.add(e, &out);
  EXPECT_FALSE(out.empty()) << "full messages leave before flush";
  encoder.flush(t0 + 100, &out);
  EXPECT_EQ(encoder.buffered_records(), 0u);
  EXPECT_EQ(encoder.sequence(), 60u);

  Stream s;
  std::uint32_t expected_sequence = 0;
  unsigned data_messages = 0;
  for (const IpfixMessage& m : out) {
    EXPECT_LE(m.bytes.size(), 300u);
    const Message h = parse(m.bytes);
    EXPECT_EQ(h.sequence, expected_sequence);
    const std::uint32_t n = data_records_in(m.bytes, s);
    EXPECT_EQ(n, m.data_records);
    s.feed(m.bytes);
    expected_sequence += n;
    if (n) {
      ++data_messages;
      // Nearly full: the next record would not have fitted.
      EXPECT_TRUE(&m == &out.back() || m.bytes.size() + 4 + ipfix::record_bytes(ipfix::Shape::mapping) > 300)
          << "message of " << m.bytes.size() << " bytes left early";
    }
  }
  EXPECT_GT(data_messages, 3u);
  ASSERT_EQ(s.records.size(), 60u);
  for (std::size_t i = 0; i < 60; ++i) EXPECT_EQ(s.records[i].second.at(323), t0 + i) << "records keep their order";
}

TEST(IpfixEncode, TemplateMessagesDoNotAdvanceTheSequence) {
  // Each data message carries one record and is preceded by the first
  // template message only: the sequence goes 0, 1, 2.
  IpfixEncoder encoder(IpfixConfig{});
  std::vector<IpfixMessage> out;
  for (int k = 0; k < 3; ++k) {
    encoder.add(limit(Type::ports_exhausted, t0, inside_a), &out);
    encoder.flush(t0, &out);
  }
  std::vector<std::uint32_t> seqs;
  for (const IpfixMessage& m : out)
    if (m.data_records) seqs.push_back(parse(m.bytes).sequence);
  EXPECT_EQ(seqs, (std::vector<std::uint32_t>{0, 1, 2}));
}

// RFC 7011 section 8.4: templates first, then again every refresh interval,
// in messages of their own; an idle exporter still refreshes them.
TEST(IpfixEncode, TemplateRefreshTiming) {
  IpfixConfig config;
  config.template_refresh_s = 10;
  IpfixEncoder encoder(config);
  std::vector<IpfixMessage> out;
  const auto kinds = [&] {
    std::string k;
    for (const IpfixMessage& m : out) k += m.data_records ? 'D' : 'T';
    out.clear();
    return k;
  };
  encoder.flush(t0, &out);
  EXPECT_EQ(kinds(), "T") << "announced at start";
  encoder.add(limit(Type::ports_exhausted, t0 + 1000, inside_a), &out);
  EXPECT_EQ(kinds(), "");
  encoder.flush(t0 + 5000, &out);
  EXPECT_EQ(kinds(), "D");
  encoder.flush(t0 + 9999, &out);
  EXPECT_EQ(kinds(), "") << "not due yet";
  encoder.flush(t0 + 10000, &out);
  EXPECT_EQ(kinds(), "T") << "refresh while idle";
  encoder.add(limit(Type::ports_exhausted, t0 + 25000, inside_a), &out);
  encoder.flush(t0 + 25000, &out);
  EXPECT_EQ(kinds(), "TD") << "due again: templates before the data";
}

TEST(IpfixEncode, RefreshZeroSendsTemplatesWithEveryDataMessage) {
  IpfixConfig config;
  config.template_refresh_s = 0;
  IpfixEncoder encoder(config);
  std::vector<IpfixMessage> out;
  encoder.flush(t0, &out);
  ASSERT_EQ(out.size(), 1u);
  out.clear();
  encoder.flush(t0 + 1, &out);
  EXPECT_TRUE(out.empty()) << "idle: nothing";
  for (int k = 0; k < 2; ++k) {
    encoder.add(limit(Type::pool_exhausted, t0 + 2, inside_a), &out);
    encoder.flush(t0 + 2, &out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].data_records, 0u);
    EXPECT_EQ(out[1].data_records, 1u);
    out.clear();
  }
}

TEST(IpfixEncode, SmallestMessagesSplitTheTemplates) {
  IpfixConfig config;
  config.max_message_bytes = 0;  // clamped to the minimum
  config.log_destination = true;
  std::vector<NatEvent> events;
  for (int i = 0; i < 10; ++i) events.push_back(session(Type::session_deleted, t0, inside_c, 7000, 7000));
  const std::vector<IpfixMessage> out = encode_ipfix(events, config, t0);
  Stream s;
  unsigned template_messages = 0;
  for (const IpfixMessage& m : out) {
    EXPECT_LE(m.bytes.size(), ipfix::min_message_bytes);
    s.feed(m.bytes);
    if (!m.data_records) ++template_messages;
  }
  EXPECT_GT(template_messages, 1u);
  EXPECT_EQ(s.templates.size(), ipfix::shape_count);
  EXPECT_EQ(s.records.size(), 10u);
}

TEST(IpfixExporter, OpenChecksItsConfiguration) {
  std::string error;
  for (const char* bad : {"", "localhost:4739", "192.0.2.1", "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:47x",
                          "[2001:db8::1]:4739"}) {
    IpfixConfig c;
    c.collector = bad;
    EXPECT_EQ(IpfixExporter::open(c, &error), nullptr) << bad;
    EXPECT_NE(error, "");
  }
  IpfixConfig c;
  c.collector = "127.0.0.1:4739";
  c.max_message_bytes = 100;
  EXPECT_EQ(IpfixExporter::open(c, &error), nullptr);
  EXPECT_NE(error.find("max_message_bytes"), std::string::npos);
}

// ------------------------------------------------------------ syslog lines

SyslogConfig syslog_config() {
  SyslogConfig c;
  c.hostname = "cgn1";
  return c;
}

TEST(SyslogFormat, BlockAllocation) {
  EXPECT_EQ(format_syslog(block(Type::block_allocated, t0, inside_a, 1024, 1535), syslog_config(), "4242"),
            "<134>1 2026-11-21T10:00:00.123Z cgn1 passgate 4242 NAT-BLOCK-ALLOC [passgate@32473 "
            "inside=\"100.64.0.5\" public=\"192.0.2.1\" port-start=\"1024\" port-end=\"1535\" port-step=\"1\" "
            "pool=\"3\"] 100.64.0.5 -> 192.0.2.1 ports 1024-1535 allocated");
}

TEST(SyslogFormat, SessionDestinationOnlyWhenConfigured) {
  const NatEvent e = session(Type::session_created, t0, inside_a, 5000, 1100);
  SyslogConfig c = syslog_config();
  const std::string hidden = format_syslog(e, c, "1");
  EXPECT_EQ(hidden,
            "<134>1 2026-11-21T10:00:00.123Z cgn1 passgate 1 NAT-SESSION-CREATE [passgate@32473 "
            "inside=\"100.64.0.5\" public=\"192.0.2.1\" proto=\"tcp\" inside-port=\"5000\" public-port=\"1100\" "
            "pool=\"3\"] tcp 100.64.0.5:5000 -> 192.0.2.1:1100 created");
  EXPECT_EQ(hidden.find("198.51.100.7"), std::string::npos);
  c.log_destination = true;
  const std::string shown = format_syslog(e, c, "1");
  EXPECT_NE(shown.find(" dest=\"198.51.100.7\" dest-port=\"443\""), std::string::npos) << shown;
  EXPECT_NE(shown.find("-> 192.0.2.1:1100 to 198.51.100.7:443 created"), std::string::npos) << shown;
}

// RFC 7422: a deterministic pool's mapping, once in syslog and once in
// IPFIX, reads back (nat::parse_mapping) as the same mapping.
nat::PoolConfig mapping_pool() {
  nat::PoolConfig p;
  p.name = "det";
  p.mode = nat::PoolMode::deterministic;
  p.subscribers.push_back({ipv4(100, 64, 0, 0), 22});
  p.public_addresses.push_back({ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 25)});
  return p;
}

DeterministicMappingEvent mapping_event(const nat::PoolConfig& p) {
  const nat::DeterministicGeometry g = nat::deterministic_geometry(p);
  return {t0, 2, p.name, p.port_min, p.port_max, g.ratio, g.ports_per_subscriber, nat::describe_mapping(p)};
}

TEST(SyslogFormat, DeterministicMapping) {
  const nat::PoolConfig p = mapping_pool();
  const std::string line = format_syslog_mapping(mapping_event(p), syslog_config(), "7");
  EXPECT_EQ(line,
            "<134>1 2026-11-21T10:00:00.123Z cgn1 passgate 7 NAT-DET-MAP [passgate@32473 pool=\"2\" "
            "pool-name=\"det\" algorithm=\"rfc7422\" port-start=\"1024\" port-end=\"65535\" "
            "ports-per-subscriber=\"1008\" sharing-ratio=\"64\"] deterministic mapping in force: algorithm=rfc7422 "
            "pool=det subscribers=100.64.0.0/22 public=198.51.100.10-198.51.100.25 ports=1024-65535 ratio=64 "
            "ports_per_subscriber=1008");
  std::string error;
  const auto back = nat::parse_mapping(line, &error);
  ASSERT_TRUE(back) << error;
  EXPECT_TRUE(nat::same_geometry(p, *back));
}

TEST(IpfixEncode, DeterministicMappingRecord) {
  const nat::PoolConfig p = mapping_pool();
  IpfixEncoder encoder{IpfixConfig{}};
  std::vector<IpfixMessage> out;
  encoder.add_mapping(mapping_event(p), &out);
  encoder.flush(t0 + 10, &out);
  Stream s;
  for (const IpfixMessage& m : out) s.feed(m.bytes);
  const Template& t = s.templates.at(ipfix::template_id(ipfix::Shape::deterministic_mapping));
  ASSERT_EQ(t.size(), 7u);
  EXPECT_EQ(t[2].id, ipfix::ie::natPoolName);
  EXPECT_EQ(t[2].length, ipfix::variable_length);
  EXPECT_EQ(t[6].id, ipfix::ie::deterministicMapping);
  EXPECT_EQ(t[6].enterprise, ipfix::ie::passgate_enterprise);
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0].second.at(ipfix::ie::observationTimeMilliseconds), t0);
  EXPECT_EQ(s.records[0].second.at(ipfix::ie::natPoolId), 2u);
  EXPECT_EQ(s.records[0].second.at(ipfix::ie::portRangeNumPorts), 1008u);
  EXPECT_EQ(s.texts[0].at(ipfix::ie::natPoolName), "det");
  std::string error;
  const auto back = nat::parse_mapping(s.texts[0].at(ipfix::ie::deterministicMapping), &error);
  ASSERT_TRUE(back) << error;
  EXPECT_TRUE(nat::same_geometry(p, *back));
  // A long mapping (here 300 prefixes) takes the three-byte length form.
  nat::PoolConfig wide = p;
  wide.subscribers.clear();
  for (std::uint32_t i = 0; i < 300; ++i) wide.subscribers.push_back({packet::be32::from_host(0x0a000000u + (i << 8)), 24});
  out.clear();
  IpfixEncoder second{IpfixConfig{}};
  second.add_mapping(mapping_event(wide), &out);
  second.flush(t0, &out);
  Stream w;
  for (const IpfixMessage& m : out) w.feed(m.bytes);
  ASSERT_EQ(w.texts.size(), 1u);
  EXPECT_GT(w.texts[0].at(ipfix::ie::deterministicMapping).size(), 255u);
  EXPECT_EQ(w.texts[0].at(ipfix::ie::deterministicMapping), nat::describe_mapping(wide));
}

TEST(SyslogFormat, PriorityTimestampAndNilValues) {
  SyslogConfig c;
  c.facility = 23;  // local7
  c.hostname = "";
  // Exhaustion is a warning: 23 * 8 + 4 = 188. Milliseconds keep 3 digits.
  const std::string line = format_syslog(limit(Type::ports_exhausted, 7, inside_a), c, "");
  EXPECT_EQ(line.rfind("<188>1 1970-01-01T00:00:00.007Z - passgate - NAT-PORTS-EXHAUSTED [passgate@32473 ", 0), 0u)
      << line;
  const NatEvent pool_empty{Type::pool_exhausted, t0, inside_b, packet::be32{0}, 0, 0, 9};
  const std::string p = format_syslog(pool_empty, c, "1");
  EXPECT_EQ(p.find("public="), std::string::npos) << "no public address to name";
  EXPECT_NE(p.find("pool=\"9\""), std::string::npos);
}

TEST(SyslogFormat, MsgIdsAreDistinctAndValid) {
  std::vector<std::string> seen;
  for (int t = 0; t <= static_cast<int>(Type::session_deleted); ++t) {
    const std::string id = syslog_msgid(static_cast<Type>(t));
    EXPECT_LE(id.size(), 32u) << "RFC 5424 MSGID is at most 32 characters";
    EXPECT_EQ(std::count(seen.begin(), seen.end(), id), 0) << id;
    seen.push_back(id);
  }
}

TEST(SyslogFormat, ConfigurationIsChecked) {
  SyslogConfig c = syslog_config();
  EXPECT_EQ(validate_syslog_config(c), "");
  c.facility = 24;
  EXPECT_NE(validate_syslog_config(c), "");
  c = syslog_config();
  c.hostname = "has space";
  EXPECT_NE(validate_syslog_config(c), "");
  c = syslog_config();
  c.sd_id = "nat";  // no enterprise number: reserved for IANA names
  EXPECT_NE(validate_syslog_config(c), "");
  std::string error;
  c = syslog_config();
  c.server = "nowhere";
  EXPECT_EQ(SyslogExporter::open(c, &error), nullptr);
  EXPECT_NE(error, "");
}

// ------------------------------------------------------------ the gateway's own log

TEST(Log, LevelsAndFiltering) {
  EXPECT_EQ(parse_level("info"), Level::info);
  EXPECT_EQ(parse_level("warn"), Level::warning);
  EXPECT_EQ(parse_level("debug"), Level::debug);
  EXPECT_EQ(parse_level("loud"), std::nullopt);
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  set_log_stream(f);
  set_min_level(Level::notice);
  log(Level::info, "hidden {}", 1);
  log(Level::warning, "shown {} of {}", 2, "pool cgn");
  log(Level::error, "error line");
  set_min_level(Level::info);
  set_log_stream(nullptr);
  std::rewind(f);
  std::string text;
  char buf[256];
  while (std::fgets(buf, sizeof buf, f)) text += buf;
  std::fclose(f);
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  const auto at = text.find("Z warning: shown 2 of pool cgn\n");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_EQ(at, 23u) << "UTC timestamp with milliseconds first: " << text;
  EXPECT_NE(text.find("Z error: error line\n"), std::string::npos);
}

}  // namespace
}  // namespace passgate::control
