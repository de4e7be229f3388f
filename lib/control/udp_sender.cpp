#include "control/udp_sender.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace passgate::control {

bool parse_ipv4_endpoint(std::string_view text, Ipv4Endpoint* out) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  const std::string address(text.substr(0, colon));
  in_addr a{};
  if (inet_pton(AF_INET, address.c_str(), &a) != 1) return false;
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535) return false;
  out->address = ntohl(a.s_addr);
  out->port = static_cast<std::uint16_t>(port);
  return true;
}

std::unique_ptr<UdpSender> UdpSender::connect(const std::string& address_port, std::string* error) {
  Ipv4Endpoint endpoint;
  if (!parse_ipv4_endpoint(address_port, &endpoint)) {
    *error = "'" + address_port + "' is not an IPv4 ADDRESS:PORT";
    return nullptr;
  }
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("cannot create a UDP socket: ") + std::strerror(errno);
    return nullptr;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(endpoint.port);
  to.sin_addr.s_addr = htonl(endpoint.address);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
    *error = "cannot reach " + address_port + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<UdpSender>(new UdpSender(fd));
}

UdpSender::~UdpSender() { ::close(fd_); }

bool UdpSender::send(std::span<const std::uint8_t> datagram) {
  const ssize_t n = ::send(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  return n == static_cast<ssize_t>(datagram.size());
}

}  // namespace passgate::control
