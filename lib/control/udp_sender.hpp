// A connected UDP socket to one IPv4 collector, shared by the IPFIX (RFC 7011
// section 10.3) and syslog (RFC 5426) exporters. Connecting the socket lets
// the kernel report an unreachable collector (ICMP port unreachable) as an
// error on a later send, which the exporters count. Sends never block: the
// control core must keep draining the workers' event rings, so a datagram the
// kernel cannot take at once is counted as an error and dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace passgate::control {

class UdpSender {
 public:
  // nullptr and *error when the text is not ADDRESS:PORT (as
  // packet::text::parse_endpoint reads it) or no socket can be made.
  static std::unique_ptr<UdpSender> connect(const std::string& address_port, std::string* error);
  // Takes ownership of an already connected datagram socket (tests use a
  // socketpair to make the kernel refuse datagrams on purpose).
  static std::unique_ptr<UdpSender> adopt(int fd);
  ~UdpSender();
  UdpSender(const UdpSender&) = delete;
  UdpSender& operator=(const UdpSender&) = delete;

  // One datagram; false when the kernel refused it (the reason in errno).
  bool send(std::span<const std::uint8_t> datagram);

  // What one send_batch() did: every datagram is either sent or refused.
  struct BatchResult {
    std::size_t sent = 0;     // datagrams the kernel took
    std::size_t refused = 0;  // datagrams it did not take: dropped
    std::size_t calls = 0;    // system calls made
    int last_error = 0;       // errno of the last refusal
  };
  // Many datagrams in few sendmmsg() calls, never blocking; each datagram
  // the kernel does not take is counted as refused and dropped (see
  // udp_sender.cpp for how sendmmsg's partial results are read).
  BatchResult send_batch(std::span<const std::span<const std::uint8_t>> datagrams);

 private:
  explicit UdpSender(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace passgate::control
