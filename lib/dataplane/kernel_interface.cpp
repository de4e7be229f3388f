#include "dataplane/kernel_interface.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <tuple>

namespace passgate::dataplane {

namespace {

// A file descriptor closed on every return path.
struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Writes `value` to /proc/sys/<path>. missing_ok: a kernel without the knob
// (IPv6 compiled out) is no error, the noise it would silence does not exist.
std::string write_sysctl(const std::string& path, const char* value, bool missing_ok) {
  const std::string file = "/proc/sys/" + path;
  Fd f(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
  if (f.fd < 0) return missing_ok && errno == ENOENT ? std::string() : fmt::format("{}: {}", file, std::strerror(errno));
  const std::size_t n = std::strlen(value);
  if (::write(f.fd, value, n) != static_cast<ssize_t>(n)) return fmt::format("{}: {}", file, std::strerror(errno));
  return {};
}

bool fill_name(ifreq& r, const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return false;
  std::memset(&r, 0, sizeof r);
  std::memcpy(r.ifr_name, name.data(), name.size());
  return true;
}

void set_inet(sockaddr& sa, std::uint32_t network_order) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = network_order;
  std::memcpy(&sa, &in, sizeof in);
}

}  // namespace

std::string prepare_kernel_interface(const std::string& name, packet::be32 address, std::uint8_t prefix_length) {
  ifreq r;
  if (!fill_name(r, name)) return fmt::format("kernel interface name '{}' is not 1 to {} characters", name, IFNAMSIZ - 1);
  const std::string conf4 = "net/ipv4/conf/" + name + "/";
  for (const auto& [path, value, missing_ok] :
       {std::tuple{"net/ipv6/conf/" + name + "/disable_ipv6", "1", true}, std::tuple{conf4 + "arp_ignore", "8", false},
        std::tuple{conf4 + "arp_announce", "2", false}, std::tuple{conf4 + "arp_notify", "1", false}})
    if (std::string problem = write_sysctl(path, value, missing_ok); !problem.empty()) return problem;

  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0) return fmt::format("socket: {}", std::strerror(errno));
  set_inet(r.ifr_addr, address.raw);
  if (::ioctl(s.fd, SIOCSIFADDR, &r) != 0)
    return fmt::format("{}: cannot set address: {}", name, std::strerror(errno));
  const std::uint32_t mask = prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_length);
  set_inet(r.ifr_netmask, htonl(mask));
  if (::ioctl(s.fd, SIOCSIFNETMASK, &r) != 0)
    return fmt::format("{}: cannot set netmask /{}: {}", name, prefix_length, std::strerror(errno));
  return {};
}

std::string quiet_data_interface(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string::npos)
    return fmt::format("interface name '{}' is not 1 to {} characters", name, IFNAMSIZ - 1);
  const std::string conf4 = "net/ipv4/conf/" + name + "/";
  for (const auto& [path, value, missing_ok] :
       {std::tuple{"net/ipv6/conf/" + name + "/disable_ipv6", "1", true}, std::tuple{conf4 + "arp_ignore", "8", false},
        std::tuple{conf4 + "rp_filter", "1", false}})
    if (std::string problem = write_sysctl(path, value, missing_ok); !problem.empty()) return problem;
  return {};
}

std::optional<LinkFlags> kernel_link_flags(const std::string& name) {
  ifreq r;
  if (!fill_name(r, name)) return std::nullopt;
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0 || ::ioctl(s.fd, SIOCGIFFLAGS, &r) != 0) return std::nullopt;
  return LinkFlags{(r.ifr_flags & IFF_UP) != 0, (r.ifr_flags & IFF_RUNNING) != 0};
}

}  // namespace passgate::dataplane
