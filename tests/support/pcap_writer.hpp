// Minimal writer of classic pcap files (LINKTYPE_ETHERNET), so that what the
// engine produced can be read by tshark/Wireshark. Each IPv4 packet is framed
// in an Ethernet header with fixed example MAC addresses.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace passgate::testing {

class PcapWriter {
 public:
  explicit PcapWriter(const std::string& path);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  [[nodiscard]] bool ok() const { return file_ != nullptr; }
  void write_ipv4(std::span<const std::uint8_t> ip, std::uint64_t time_us);
  [[nodiscard]] std::uint64_t packets() const { return packets_; }

 private:
  std::FILE* file_ = nullptr;
  std::uint64_t packets_ = 0;
};

}  // namespace passgate::testing
