#include "control/udp_sender.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "packet/address_text.hpp"

namespace passgate::control {

std::unique_ptr<UdpSender> UdpSender::connect(const std::string& address_port, std::string* error) {
  const auto endpoint = packet::text::parse_endpoint(address_port);
  if (!endpoint) {
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
  to.sin_port = htons(endpoint->port);
  to.sin_addr.s_addr = endpoint->address.raw;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
    *error = "cannot reach " + address_port + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<UdpSender>(new UdpSender(fd));
}

std::unique_ptr<UdpSender> UdpSender::adopt(int fd) { return std::unique_ptr<UdpSender>(new UdpSender(fd)); }

UdpSender::~UdpSender() { ::close(fd_); }

bool UdpSender::send(std::span<const std::uint8_t> datagram) {
  const ssize_t n = ::send(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  return n == static_cast<ssize_t>(datagram.size());
}

// sendmmsg(2) in chunks of batch_chunk datagrams. It returns how many of a
// chunk the kernel took; when that is fewer than offered, the next one failed
// and its error is lost (the call reports an error only when the first
// message fails). That datagram is then tried once more alone with send(2),
// which either takes it (the failure was a pending ECONNREFUSED, reported and
// cleared by the failed attempt) or refuses it again with the reason. A
// refusal:
//   - EAGAIN/EWOULDBLOCK or ENOBUFS: the socket buffer or the device queue is
//     full, and with MSG_DONTWAIT nothing frees it within this call: the rest
//     of the batch is refused at once rather than tried one failing call at a
//     time;
//   - another error (ECONNREFUSED, EMSGSIZE, unreachable): that datagram is
//     refused and the rest is tried.
// Every datagram is counted exactly once, as sent or refused.
UdpSender::BatchResult UdpSender::send_batch(std::span<const std::span<const std::uint8_t>> datagrams) {
  constexpr std::size_t batch_chunk = 64;
  BatchResult r;
  mmsghdr msgs[batch_chunk];
  iovec iov[batch_chunk];
  std::size_t i = 0;
  // Counts datagram i as refused with `error`; false when the rest of the
  // batch is refused with it.
  const auto refuse = [&](int error) {
    r.last_error = error;
    if (error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS) {
      r.refused += datagrams.size() - i;
      i = datagrams.size();
      return false;
    }
    ++r.refused;
    ++i;
    return true;
  };
  while (i < datagrams.size()) {
    const std::size_t n = std::min(batch_chunk, datagrams.size() - i);
    for (std::size_t k = 0; k < n; ++k) {
      iov[k].iov_base = const_cast<std::uint8_t*>(datagrams[i + k].data());
      iov[k].iov_len = datagrams[i + k].size();
      msgs[k] = mmsghdr{};
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    const int taken = ::sendmmsg(fd_, msgs, static_cast<unsigned>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    ++r.calls;
    if (taken < 0) {
      if (errno == EINTR) continue;
      if (!refuse(errno)) break;
      continue;
    }
    r.sent += static_cast<std::size_t>(taken);
    i += static_cast<std::size_t>(taken);
    if (static_cast<std::size_t>(taken) == n) continue;
    ++r.calls;
    if (send(datagrams[i])) {
      ++r.sent;
      ++i;
    } else if (!refuse(errno)) {
      break;
    }
  }
  return r;
}

}  // namespace passgate::control
