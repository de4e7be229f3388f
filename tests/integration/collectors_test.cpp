// The NAT event exporters against real receivers: collector daemons from
// Debian (nfcapd/nfdump 1.7.1 for IPFIX, rsyslogd for syslog) started per
// test, and UDP sockets on the loopback. RFC 6888 REQ-12: destinations only
// when configured. The encoders byte by byte are unit tests
// (tests/unit/event_export_test.cpp).
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
#include "support/nat_events.hpp"
#include "support/daemons.hpp"

namespace passgate::control {
namespace {

using nat::NatEvent;
using Type = NatEvent::Type;
using namespace testing::nat_events;
using namespace passgate::integration;

std::uint16_t free_udp_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The receive queue of the UDP socket bound to 127.0.0.1:port, from
// /proc/net/udp; nullopt while nothing is bound there.
std::optional<unsigned long> udp_rx_queue(std::uint16_t port) {
  std::ifstream f("/proc/net/udp");
  std::string line;
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", port);
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string slot, local_address, remote_address, state, queues;
    in >> slot >> local_address >> remote_address >> state >> queues;
    if (local_address == local) return std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16);
  }
  return std::nullopt;
}


// nfdump -o json prints an array of flat objects, one "key" : value per line.
std::vector<std::map<std::string, std::string>> parse_nfdump_json(const std::string& text) {
  std::vector<std::map<std::string, std::string>> records;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("{", 0) == 0) records.emplace_back();
    const auto q1 = line.find('"');
    const auto colon = line.find("\" : ");
    if (records.empty() || q1 == std::string::npos || colon == std::string::npos) continue;
    std::string value = line.substr(colon + 4);
    if (!value.empty() && value.back() == ',') value.pop_back();
    if (value.size() >= 2 && value.front() == '"') value = value.substr(1, value.size() - 2);
    records.back()[line.substr(q1 + 1, colon - q1 - 1)] = value;
  }
  return records;
}

// nfcapd (nfdump 1.7.1) receives our IPFIX and nfdump reads the file back.
// What nfdump 1.7.1 decodes from IPFIX (src/netflow/ipfix.c, its translation
// table): observationTimeMilliseconds, natEvent, sourceIPv4Address,
// postNATSourceIPv4Address, protocolIdentifier, source/destination ports,
// postNAPT ports, destinationIPv4Address, postNATDestinationIPv4Address.
// It does NOT decode portRangeStart/End/StepSize/NumPorts (361-364) nor
// natPoolId (283) from IPFIX (only from NetFlow v9), nor
// natQuotaExceededEvent (466): those are checked byte by byte above, and
// here only if a later nfdump shows them.
TEST(Collectors, NfcapdStoresIpfixNatEvents) {
  REQUIRE_PROGRAM("nfcapd", "nfdump");
  REQUIRE_PROGRAM("nfdump", "nfdump");
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string flows = dir.path() + "/flows";
  std::filesystem::create_directory(flows);
  const std::uint16_t port = free_udp_port();
  Daemon nfcapd({"nfcapd", "-b", "127.0.0.1", "-p", std::to_string(port), "-w", flows, "-P",
                 dir.path() + "/nfcapd.pid", "-t", "3600"},
                dir.path() + "/nfcapd.log");
  ASSERT_TRUE(wait_for([&] { return udp_rx_queue(port).has_value(); })) << read_file(dir.path() + "/nfcapd.log");

  std::string error;
  IpfixConfig plain;
  plain.collector = "127.0.0.1:" + std::to_string(port);
  plain.max_message_bytes = 128;  // several data messages: the sequence numbers matter
  auto a = IpfixExporter::open(plain, &error);
  ASSERT_NE(a, nullptr) << error;
  IpfixConfig with_dest = plain;
  with_dest.observation_domain_id = 2;
  with_dest.log_destination = true;
  with_dest.max_message_bytes = 1400;
  auto b = IpfixExporter::open(with_dest, &error);
  ASSERT_NE(b, nullptr) << error;

  a->flush(t0);
  b->flush(t0);
  a->add(block(Type::block_allocated, t0, inside_a, 1024, 1535));
  a->add(preserved(Type::port_preserved, t0 + 1, inside_b, 500, 17));
  a->add(limit(Type::ports_exhausted, t0 + 2, inside_a));
  a->add(session(Type::session_created, t0 + 3, inside_a, 5000, 1100));
  a->add(session(Type::session_deleted, t0 + 4, inside_a, 5000, 1100));
  a->add(block(Type::block_released, t0 + 5, inside_a, 1024, 1535));
  a->flush(t0 + 10);
  b->add(session(Type::session_created, t0 + 6, inside_c, 6000, 1200));
  b->add(session(Type::session_deleted, t0 + 7, inside_c, 6000, 1200));
  b->flush(t0 + 10);
  EXPECT_EQ(a->stats().events, 6u);
  EXPECT_EQ(a->stats().records_sent, 6u);
  EXPECT_GE(a->stats().messages_sent, 4u) << "128-byte messages: templates split, data split";
  EXPECT_EQ(a->stats().send_errors, 0u);
  EXPECT_EQ(b->stats().records_sent, 2u);

  // Everything read by nfcapd before it is told to stop (SIGTERM writes the file).
  ASSERT_TRUE(wait_for([&] { return udp_rx_queue(port).value_or(1) == 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(nfcapd.stop(), 0) << read_file(dir.path() + "/nfcapd.log");
  const std::string log = read_file(dir.path() + "/nfcapd.log");

  std::string file;
  for (const auto& entry : std::filesystem::directory_iterator(flows))
    if (entry.path().filename().string().rfind("nfcapd.2", 0) == 0) file = entry.path().string();
  ASSERT_FALSE(file.empty()) << "no flow file; nfcapd said:\n" << log;

  int status = 0;
  const std::string info = run("nfdump -I -r " + file, &status);
  ASSERT_EQ(status, 0) << info;
  EXPECT_NE(info.find("Sequence failures: 0"), std::string::npos) << "RFC 7011 sequence numbers\n" << info;

  const std::string json = run("TZ=UTC nfdump -q -r " + file + " -o json", &status);
  ASSERT_EQ(status, 0) << json;
  const auto records = parse_nfdump_json(json);
  ASSERT_EQ(records.size(), 8u) << json;
  std::map<std::string, std::vector<std::map<std::string, std::string>>> by_event;
  for (const auto& r : records) by_event[r.at("nat_event_id")].push_back(r);

  const auto& alloc = by_event["16"];
  ASSERT_EQ(alloc.size(), 1u) << json;
  EXPECT_EQ(alloc[0].at("nat_event"), "Port block allocation");
  EXPECT_EQ(alloc[0].at("src4_addr"), "100.64.0.5");
  EXPECT_EQ(alloc[0].at("src4_xlt_ip"), "192.0.2.1");
  EXPECT_EQ(alloc[0].at("t_event"), "2026-11-21T10:00:00.123");
  if (alloc[0].count("pblock_start")) {  // not in 1.7.1's IPFIX decoder
    EXPECT_EQ(alloc[0].at("pblock_start"), "1024");
    EXPECT_EQ(alloc[0].at("pblock_end"), "1535");
    EXPECT_EQ(alloc[0].at("pblock_step"), "1");
  }
  ASSERT_EQ(by_event["17"].size(), 1u);
  EXPECT_EQ(by_event["17"][0].at("nat_event"), "Port block de-allocation");
  EXPECT_EQ(by_event["17"][0].at("t_event"), "2026-11-21T10:00:00.128");

  const auto& bib = by_event["8"];
  ASSERT_EQ(bib.size(), 1u) << json;
  EXPECT_EQ(bib[0].at("nat_event"), "NAT44 BIB create");
  EXPECT_EQ(bib[0].at("src4_addr"), "100.64.0.6");
  EXPECT_EQ(bib[0].at("proto"), "17");
  EXPECT_EQ(bib[0].at("src_port"), "500");
  EXPECT_EQ(bib[0].at("src_xlt_port"), "500");

  ASSERT_EQ(by_event["12"].size(), 1u);
  EXPECT_EQ(by_event["12"][0].at("nat_event"), "NAT ports exhausted");
  EXPECT_EQ(by_event["12"][0].at("src4_addr"), "100.64.0.5");
  EXPECT_EQ(by_event["12"][0].at("src4_xlt_ip"), "192.0.2.1");

  // Sessions: without destination from domain 1, with it from domain 2.
  ASSERT_EQ(by_event["4"].size(), 2u);
  ASSERT_EQ(by_event["5"].size(), 2u);
  for (const char* id : {"4", "5"})
    for (const auto& r : by_event[id]) {
      EXPECT_EQ(r.at("proto"), "6");
      EXPECT_EQ(r.at("src4_xlt_ip"), "192.0.2.1");
      if (r.at("src4_addr") == "100.64.0.5") {
        EXPECT_EQ(r.at("src_port"), "5000");
        EXPECT_EQ(r.at("src_xlt_port"), "1100");
        EXPECT_EQ(r.at("dst4_addr"), "0.0.0.0") << "RFC 6888 REQ-12: no destination by default";
        EXPECT_EQ(r.at("dst_port"), "0");
      } else {
        EXPECT_EQ(r.at("src4_addr"), "100.64.0.7");
        EXPECT_EQ(r.at("src_port"), "6000");
        EXPECT_EQ(r.at("src_xlt_port"), "1200");
        EXPECT_EQ(r.at("dst4_addr"), "198.51.100.7");
        EXPECT_EQ(r.at("dst_port"), "443");
        EXPECT_EQ(r.at("dst4_xlt_ip"), "198.51.100.7");
        EXPECT_EQ(r.at("dst_xlt_port"), "443");
      }
    }
  EXPECT_EQ(by_event["4"][0].at("nat_event"), "NAT44 session create");
}

// rsyslogd with a private configuration receives the lines over UDP and
// parses them with its RFC 5424 parser; the fields it extracted are written
// next to the raw message.
TEST(Collectors, RsyslogParsesRfc5424Lines) {
  REQUIRE_PROGRAM("rsyslogd", "rsyslog");
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string& d = dir.path();
  std::filesystem::create_directory(d + "/work");
  const std::uint16_t port = free_udp_port();
  std::ofstream(d + "/rsyslog.conf")
      << "global(workDirectory=\"" << d << "/work\" net.enableDNS=\"off\")\n"
      << "module(load=\"imudp\")\n"
      << "template(name=\"fields\" type=\"string\" string=\"%protocol-version%|%pri%|%syslogfacility-text%|"
         "%syslogseverity-text%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|"
         "%structured-data%|%msg%\\n\")\n"
      << "template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n"
      << "ruleset(name=\"nat\") {\n"
      << "  action(type=\"omfile\" file=\"" << d << "/fields.log\" template=\"fields\")\n"
      << "  action(type=\"omfile\" file=\"" << d << "/raw.log\" template=\"raw\")\n"
      << "}\n"
      << "input(type=\"imudp\" address=\"127.0.0.1\" port=\"" << port << "\" ruleset=\"nat\")\n";
  Daemon rsyslogd({"rsyslogd", "-n", "-f", d + "/rsyslog.conf", "-i", d + "/rsyslogd.pid"}, d + "/rsyslogd.log");
  ASSERT_TRUE(wait_for([&] { return udp_rx_queue(port).has_value(); })) << read_file(d + "/rsyslogd.log");

  SyslogConfig config;
  config.server = "127.0.0.1:" + std::to_string(port);
  config.hostname = "cgn-test";
  std::string error;
  auto plain = SyslogExporter::open(config, &error);
  ASSERT_NE(plain, nullptr) << error;
  config.log_destination = true;
  auto with_dest = SyslogExporter::open(config, &error);
  ASSERT_NE(with_dest, nullptr) << error;

  const std::vector<NatEvent> events{block(Type::block_allocated, t0, inside_a, 1024, 1535),
                                     session(Type::session_created, t0 + 1, inside_a, 5000, 1100),
                                     limit(Type::ports_exhausted, t0 + 2, inside_a)};
  for (const NatEvent& e : events) plain->add(e);
  with_dest->add(session(Type::session_deleted, t0 + 3, inside_c, 6000, 1200));
  plain->flush(t0 + 10);
  with_dest->flush(t0 + 10);  // add() only queues; flush() sends the drain
  EXPECT_EQ(plain->stats().messages_sent, 3u);
  EXPECT_EQ(plain->stats().send_errors, 0u);

  const auto lines_of = [](const std::string& path) {
    std::vector<std::string> lines;
    std::istringstream in(read_file(path));
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  };
  ASSERT_TRUE(wait_for([&] { return lines_of(d + "/fields.log").size() >= 4 && lines_of(d + "/raw.log").size() >= 4; }))
      << read_file(d + "/rsyslogd.log") << read_file(d + "/fields.log");
  EXPECT_EQ(rsyslogd.stop(), 0) << read_file(d + "/rsyslogd.log");

  const std::vector<std::string> raw = lines_of(d + "/raw.log");
  const std::string pid = std::to_string(getpid());
  SyslogConfig sent = config;
  sent.log_destination = false;
  ASSERT_EQ(raw.size(), 4u);
  for (std::size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(raw[i], format_syslog(events[i], sent, pid)) << "arrives byte for byte";

  const std::vector<std::string> fields = lines_of(d + "/fields.log");
  ASSERT_EQ(fields.size(), 4u);
  const auto split = [](const std::string& s) {
    std::vector<std::string> parts;
    std::string::size_type start = 0, bar;
    // The last field (MSG) may contain '|'; there are 11 fields.
    while (parts.size() < 10 && (bar = s.find('|', start)) != std::string::npos) {
      parts.push_back(s.substr(start, bar - start));
      start = bar + 1;
    }
    parts.push_back(s.substr(start));
    return parts;
  };
  const std::vector<std::string> f0 = split(fields[0]);
  ASSERT_EQ(f0.size(), 11u) << fields[0];
  EXPECT_EQ(f0[0], "1") << "parsed as RFC 5424 (VERSION 1)";
  EXPECT_EQ(f0[1], "134");
  EXPECT_EQ(f0[2], "local0");
  EXPECT_EQ(f0[3], "info");
  EXPECT_EQ(f0[4].rfind("2026-11-21T10:00:00.123", 0), 0u) << f0[4];
  EXPECT_EQ(f0[5], "cgn-test");
  EXPECT_EQ(f0[6], "passgate");
  EXPECT_EQ(f0[7], pid);
  EXPECT_EQ(f0[8], "NAT-BLOCK-ALLOC");
  EXPECT_EQ(f0[9],
            "[passgate@32473 inside=\"100.64.0.5\" public=\"192.0.2.1\" port-start=\"1024\" port-end=\"1535\" "
            "port-step=\"1\" pool=\"3\"]");
  EXPECT_EQ(f0[10], "100.64.0.5 -> 192.0.2.1 ports 1024-1535 allocated");

  const std::vector<std::string> f1 = split(fields[1]);
  ASSERT_EQ(f1.size(), 11u);
  EXPECT_EQ(f1[8], "NAT-SESSION-CREATE");
  EXPECT_EQ(f1[9].find("dest="), std::string::npos) << "RFC 6888 REQ-12";
  const std::vector<std::string> f2 = split(fields[2]);
  ASSERT_EQ(f2.size(), 11u);
  EXPECT_EQ(f2[3], "warning");
  EXPECT_EQ(f2[8], "NAT-PORTS-EXHAUSTED");
  const std::vector<std::string> f3 = split(fields[3]);
  ASSERT_EQ(f3.size(), 11u);
  EXPECT_EQ(f3[8], "NAT-SESSION-DELETE");
  EXPECT_NE(f3[9].find(" dest=\"198.51.100.7\" dest-port=\"443\""), std::string::npos) << f3[9];
}

// An unreachable collector shows as send errors, never as a stall.
TEST(Collectors, UnreachableCollectorCountsErrors) {
  const std::uint16_t port = free_udp_port();  // nobody listens: ICMP port unreachable
  IpfixConfig config;
  config.collector = "127.0.0.1:" + std::to_string(port);
  std::string error;
  auto exporter = IpfixExporter::open(config, &error);
  ASSERT_NE(exporter, nullptr) << error;
  for (int i = 0; i < 5; ++i) {
    exporter->add(limit(Type::ports_exhausted, t0 + i, inside_a));
    exporter->flush(t0 + i);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(exporter->stats().events, 5u);
  EXPECT_GT(exporter->stats().send_errors, 0u);
  EXPECT_LT(exporter->stats().records_sent, 5u);
}


// ------------------------------------------------------------ batching and refusals (issue 11 point 4)

// A UDP socket on 127.0.0.1 with an ephemeral port and a receive buffer
// large enough for every datagram of a test; closed at the end.
class UdpReceiver {
 public:
  UdpReceiver() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int bytes = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~UdpReceiver() { ::close(fd_); }
  UdpReceiver(const UdpReceiver&) = delete;
  UdpReceiver& operator=(const UdpReceiver&) = delete;

  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Every datagram queued now (loopback delivers during the send).
  [[nodiscard]] std::vector<std::string> drain() const { return drain_fd(fd_); }

  static std::vector<std::string> drain_fd(int fd) {
    std::vector<std::string> out;
    std::vector<char> buf(1 << 17);
    for (;;) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) break;
      out.emplace_back(buf.data(), static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

std::span<const std::uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Many events of one drain leave in a few sendmmsg() calls, not one system
// call each, and arrive intact and in order (RFC 5426: one message per
// datagram).
TEST(SyslogExport, OneDrainIsSentInBatches) {
  UdpReceiver collector;
  SyslogConfig config;
  config.server = collector.address();
  config.hostname = "cgn-test";
  std::string error;
  auto exporter = SyslogExporter::open(config, &error);
  ASSERT_NE(exporter, nullptr) << error;
  std::vector<NatEvent> events;
  for (std::uint16_t i = 0; i < 150; ++i)
    events.push_back(block(Type::block_allocated, t0 + i, inside_a, static_cast<std::uint16_t>(1024 + 64 * i),
                           static_cast<std::uint16_t>(1024 + 64 * i + 63)));
  for (const NatEvent& e : events) exporter->add(e);
  exporter->flush(t0 + 200);
  EXPECT_EQ(exporter->stats().events, 150u);
  EXPECT_EQ(exporter->stats().messages_sent, 150u);
  EXPECT_EQ(exporter->stats().send_errors, 0u);
  EXPECT_LE(exporter->send_calls(), 3u) << "150 datagrams in a few sendmmsg() calls";
  const std::vector<std::string> got = collector.drain();
  ASSERT_EQ(got.size(), 150u);
  const std::string pid = std::to_string(getpid());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], format_syslog(events[i], config, pid)) << i;
  // Nothing is left to send: a second flush sends nothing.
  exporter->flush(t0 + 300);
  EXPECT_EQ(exporter->stats().messages_sent, 150u);
  EXPECT_TRUE(collector.drain().empty());
}

// A collector that is down: the kernel reports the ICMP port unreachable of
// one datagram as ECONNREFUSED on a later one, which it then refuses. Every
// event is accounted for, sent or refused, and batching does not hide the
// errors (sendmmsg(2) loses the error of any message after the first one).
TEST(SyslogExport, CollectorDownCountsEveryRefusedDatagram) {
  SyslogConfig config;
  config.server = "127.0.0.1:" + std::to_string(free_udp_port());  // nobody listens
  std::string error;
  auto exporter = SyslogExporter::open(config, &error);
  ASSERT_NE(exporter, nullptr) << error;
  for (int drain = 0; drain < 4; ++drain) {
    for (int i = 0; i < 50; ++i) exporter->add(limit(Type::session_limit, t0 + i, inside_b));
    exporter->flush(t0 + 100);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const ExportStats& s = exporter->stats();
  EXPECT_EQ(s.events, 200u);
  EXPECT_GT(s.send_errors, 0u);
  EXPECT_EQ(s.messages_sent + s.send_errors, s.events) << "each event either sent or counted as refused";
  EXPECT_EQ(exporter->last_send_error(), ECONNREFUSED);
  EXPECT_EQ(exporter->queued(), 0u);
  // No call count here: on loopback the ICMP error comes back within the
  // send, so every other datagram meets it; batching is measured above.
}

// UdpSender::send_batch: datagrams the kernel refuses in the middle of a
// batch (EMSGSIZE: larger than any UDP datagram) are counted one by one;
// the others are sent, and exactly those arrive.
TEST(UdpSenderBatch, RefusedInTheMiddleOfABatchAreCountedTheRestArrive) {
  UdpReceiver collector;
  std::string error;
  auto sender = UdpSender::connect(collector.address(), &error);
  ASSERT_NE(sender, nullptr) << error;
  std::vector<std::string> payloads;
  std::size_t too_big = 0;
  for (int i = 0; i < 130; ++i) {
    if (i % 9 == 4) {
      payloads.emplace_back(70000, 'x');  // beyond 65535: EMSGSIZE
      ++too_big;
    } else {
      payloads.push_back("datagram " + std::to_string(i));
    }
  }
  std::vector<std::span<const std::uint8_t>> batch;
  for (const std::string& p : payloads) batch.push_back(as_bytes(p));
  const UdpSender::BatchResult r = sender->send_batch(batch);
  EXPECT_EQ(r.refused, too_big);
  EXPECT_EQ(r.sent, payloads.size() - too_big);
  EXPECT_EQ(r.last_error, EMSGSIZE);
  EXPECT_LE(r.calls, 3 + 2 * too_big) << "one sendmmsg() per 64, plus a retry alone and a restart per refusal";
  std::vector<std::string> expected;
  for (const std::string& p : payloads)
    if (p.size() < 70000) expected.push_back(p);
  EXPECT_EQ(collector.drain(), expected) << "what was not refused arrives, in order";
}

// A full send buffer (EAGAIN): everything from there on is refused and
// counted at once, without one failing system call per datagram; the
// datagrams counted as sent are exactly those that arrive.
TEST(UdpSenderBatch, FullSendBufferRefusesTheRestAndCountsIt) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds), 0);
  const int tiny = 1;  // the kernel's minimum: a few datagrams
  ASSERT_EQ(::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny), 0);
  auto sender = UdpSender::adopt(fds[0]);
  std::vector<std::string> payloads;
  for (int i = 0; i < 500; ++i) payloads.push_back(std::string(200, 'a') + std::to_string(i));
  std::vector<std::span<const std::uint8_t>> batch;
  for (const std::string& p : payloads) batch.push_back(as_bytes(p));
  const UdpSender::BatchResult r = sender->send_batch(batch);
  const std::vector<std::string> got = UdpReceiver::drain_fd(fds[1]);
  ::close(fds[1]);
  EXPECT_GT(r.refused, 0u);
  EXPECT_EQ(r.sent + r.refused, payloads.size());
  EXPECT_EQ(r.last_error, EAGAIN);
  EXPECT_LE(r.calls, 3u);
  ASSERT_EQ(got.size(), r.sent) << "refused == not delivered";
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], payloads[i]);
}

}  // namespace
}  // namespace passgate::control
