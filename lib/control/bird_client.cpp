#include "control/bird_client.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace passgate::control {

namespace {

using Clock = std::chrono::steady_clock;

// A reply bigger than this is not one passgate asked for (it sends enable,
// disable and show protocols): the connection is dropped rather than grown.
constexpr std::size_t max_line = 64 * 1024;

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, ms_left(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

std::optional<BirdLine> parse_bird_line(const std::string& line) {
  BirdLine out;
  if (!line.empty() && line[0] == ' ') {
    out.text = line.substr(1);
    return out;
  }
  if (line.size() < 5) return std::nullopt;
  int code = 0;
  for (int i = 0; i < 4; ++i) {
    if (line[i] < '0' || line[i] > '9') return std::nullopt;
    code = code * 10 + (line[i] - '0');
  }
  if (line[4] != ' ' && line[4] != '-') return std::nullopt;
  out.code = code;
  out.last = line[4] == ' ';
  out.text = line.substr(5);
  return out;
}

BirdClient::BirdClient(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {}

BirdClient::~BirdClient() { close(); }

void BirdClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pending_.clear();
}

bool BirdClient::read_line(std::string& line, Clock::time_point deadline, std::string* error) {
  for (;;) {
    if (const auto nl = pending_.find('\n'); nl != std::string::npos) {
      line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return true;
    }
    if (pending_.size() > max_line) {
      *error = fmt::format("a reply line longer than {} bytes", max_line);
      return false;
    }
    if (!wait_for(fd_, POLLIN, deadline)) {
      *error = fmt::format("no reply within {} ms", timeout_.count());
      return false;
    }
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) {
      pending_.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      *error = "the daemon closed the connection";
      return false;
    } else if (errno != EINTR && errno != EAGAIN) {
      *error = fmt::format("read: {}", std::strerror(errno));
      return false;
    }
  }
}

bool BirdClient::connect(std::string* error, Clock::time_point deadline) {
  close();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    *error = fmt::format("socket path {} is too long", path_);
    return false;
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *error = fmt::format("socket: {}", std::strerror(errno));
    return false;
  }
  // A unix socket connects at once or fails; EAGAIN (backlog full) is a
  // daemon too busy to take us, reported like a timeout.
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    *error = fmt::format("cannot connect to {}: {}", path_, std::strerror(errno));
    close();
    return false;
  }
  std::string greeting;
  if (!read_line(greeting, deadline, error)) {
    *error = fmt::format("{}: no greeting ({})", path_, *error);
    close();
    return false;
  }
  const auto parsed = parse_bird_line(greeting);
  if (!parsed || parsed->code != 1) {
    *error = fmt::format("{}: not BIRD's greeting: '{}'", path_, greeting.substr(0, 80));
    close();
    return false;
  }
  return true;
}

BirdReply BirdClient::command(const std::string& line) {
  BirdReply reply;
  const Clock::time_point deadline = Clock::now() + timeout_;
  if (line.find('\n') != std::string::npos) {
    reply.error = "a command is one line";
    return reply;
  }
  if (fd_ < 0 && !connect(&reply.error, deadline)) return reply;
  const std::string out = line + "\n";
  std::size_t sent = 0;
  while (sent < out.size()) {
    if (!wait_for(fd_, POLLOUT, deadline)) {
      reply.error = fmt::format("cannot send within {} ms", timeout_.count());
      close();
      return reply;
    }
    const ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      reply.error = fmt::format("send: {}", std::strerror(errno));
      close();
      return reply;
    }
    if (n > 0) sent += static_cast<std::size_t>(n);
  }
  for (;;) {
    std::string text;
    if (!read_line(text, deadline, &reply.error)) {
      // Half a reply leaves the stream out of step: start again next time.
      close();
      return reply;
    }
    const auto parsed = parse_bird_line(text);
    if (!parsed) {
      reply.error = fmt::format("not a BIRD reply line: '{}'", text.substr(0, 80));
      close();
      return reply;
    }
    reply.lines.push_back(parsed->text);
    if (parsed->code >= 0) reply.code = parsed->code;
    if (parsed->last) break;
  }
  reply.ok = reply.code < 1000;
  if (!reply.ok) reply.error = reply.lines.empty() ? fmt::format("code {}", reply.code) : reply.lines.back();
  return reply;
}

BirdReply BirdClient::set_protocol(const std::string& name, bool enabled) {
  BirdReply reply = command(fmt::format("{} {}", enabled ? "enable" : "disable", name));
  if (!reply.ok) return reply;
  // Success has one line per protocol that matched; a name that matches
  // none is an error (8003) or a syntax error (9001), both caught above.
  const char* expected = enabled ? "enabled" : "disabled";
  bool seen = false;
  for (const auto& l : reply.lines)
    if (l.size() >= std::strlen(expected) && l.compare(l.size() - std::strlen(expected), std::string::npos, expected) == 0)
      seen = true;
  if (!seen) {
    reply.ok = false;
    reply.error = fmt::format("unexpected reply to {} {}: '{}'", enabled ? "enable" : "disable", name,
                              reply.lines.empty() ? std::string() : reply.lines.front());
  }
  return reply;
}

}  // namespace passgate::control
