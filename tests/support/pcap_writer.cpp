#include "support/pcap_writer.hpp"

#include <cstring>
#include <vector>

namespace passgate::testing {

namespace {
struct FileHeader {
  std::uint32_t magic = 0xa1b2c3d4;
  std::uint16_t major = 2, minor = 4;
  std::int32_t zone = 0;
  std::uint32_t sigfigs = 0, snaplen = 65535, linktype = 1;  // Ethernet
};
struct RecordHeader {
  std::uint32_t sec, usec, caplen, len;
};
constexpr std::uint8_t ethernet[14] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00};
}  // namespace

PcapWriter::PcapWriter(const std::string& path) : file_(std::fopen(path.c_str(), "wb")) {
  if (file_) {
    const FileHeader h;
    std::fwrite(&h, sizeof h, 1, file_);
  }
}

PcapWriter::~PcapWriter() {
  if (file_) std::fclose(file_);
}

void PcapWriter::write_ipv4(std::span<const std::uint8_t> ip, std::uint64_t time_us) {
  if (!file_) return;
  const std::uint32_t len = static_cast<std::uint32_t>(ip.size() + sizeof ethernet);
  const RecordHeader r{static_cast<std::uint32_t>(time_us / 1000000), static_cast<std::uint32_t>(time_us % 1000000), len,
                       len};
  std::fwrite(&r, sizeof r, 1, file_);
  std::fwrite(ethernet, sizeof ethernet, 1, file_);
  std::fwrite(ip.data(), 1, ip.size(), file_);
  ++packets_;
}

}  // namespace passgate::testing
