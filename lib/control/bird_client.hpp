// A client of BIRD 2's control socket (the one birdc speaks to, `bird -s`):
// what passgate's health monitor uses to enable and disable the protocols
// that announce the box (issue 15). No DPDK.
//
// The protocol (BIRD's doc/reply_codes, checked against bird 2.0.12): one
// command per line; the daemon greets with "0001 BIRD <version> ready.";
// each reply line starts with a four-digit code, followed by '-' when more
// lines follow or ' ' on the reply's last line; a line starting with a
// space continues the previous code. Codes 0xxx end a command that
// succeeded (0000 plain OK; 0008/0009 "already disabled"/"disabled",
// 0010/0011 "already enabled"/"enabled"), 1xxx/2xxx are table lines,
// 8xxx runtime errors ("8003 No protocols match") and 9xxx parse errors.
//
// Every call is bounded by the timeout: a daemon that hangs (stopped,
// swapping) costs the monitor one timeout, never a stuck thread. A broken
// connection is closed and the next call connects again, so a restarted
// daemon is found without a restart of passgate.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace passgate::control {

struct BirdReply {
  bool ok = false;       // the command ran and the daemon reported success
  int code = 0;          // the final line's code; 0 when the daemon was not reached
  std::vector<std::string> lines;  // every line's text, without codes
  std::string error;     // why not ok, for the log (transport failure or the daemon's words)
};

class BirdClient {
 public:
  BirdClient(std::string socket_path, std::chrono::milliseconds timeout);
  ~BirdClient();
  BirdClient(const BirdClient&) = delete;
  BirdClient& operator=(const BirdClient&) = delete;

  // Sends one command line (no newline) and reads its whole reply.
  BirdReply command(const std::string& line);
  // `enable NAME` or `disable NAME`; "already enabled/disabled" is success.
  BirdReply set_protocol(const std::string& name, bool enabled);
  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  void close();
  [[nodiscard]] const std::string& socket_path() const { return path_; }

 private:
  bool connect(std::string* error, std::chrono::steady_clock::time_point deadline);
  // One line from the socket into `line`; false on timeout, EOF or error.
  bool read_line(std::string& line, std::chrono::steady_clock::time_point deadline, std::string* error);

  std::string path_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  std::string pending_;  // bytes read past the last line
};

// The parts of one reply line: its code (-1 for a continuation line that
// starts with a space), whether it is the reply's last line, its text.
struct BirdLine {
  int code = -1;
  bool last = false;
  std::string text;
};
// nullopt when the line is not in the protocol's form.
std::optional<BirdLine> parse_bird_line(const std::string& line);

}  // namespace passgate::control
