// What the integration tests share: real programs from Debian started per
// test (a collector, a routing daemon), a private directory, and waiting for
// a condition with a deadline.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace passgate::integration {

inline bool have(const char* program) {
  return std::system((std::string("command -v ") + program + " >/dev/null 2>&1").c_str()) == 0;
}

// Tests of real programs skip where the package is missing, except in CI, where
// scripts/install-deps.sh installs it and a skip would hide a regression.
#define REQUIRE_PROGRAM(program, package)                                                      \
  do {                                                                                         \
    if (!have(program)) {                                                                      \
      if (std::getenv("CI")) FAIL() << program << " missing: install " << package;            \
      GTEST_SKIP() << program << " not installed (Debian package " << package << ")";          \
    }                                                                                          \
  } while (0)

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "passgate-integration-XXXXXX";
    if (mkdtemp(pattern.data())) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A collector daemon in the foreground, its output in a log file; stopped
// (SIGTERM, then SIGKILL) when the test ends however it ends.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& argv, const std::string& log_path) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Daemon() { stop(); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  [[nodiscard]] bool running() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }

  // The exit status, or -1 when it had to be killed.
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {  // up to 5 s
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

inline bool wait_for(const std::function<bool()>& condition, int timeout_ms = 5000) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

inline std::string run(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  if (status) *status = rc;
  return out;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline constexpr const char* bird_test_conf = R"(router id 192.0.2.1;
protocol device { }
protocol static announce_pools { disabled; ipv4; route 192.0.2.0/29 blackhole; }
protocol static announce_default { disabled; ipv4; route 0.0.0.0/0 blackhole; }
)";

// BIRD 2 in the foreground with a private configuration and control socket:
// two static protocols that start disabled, as the box's configuration has
// them (conf/bird/passgate.conf).
class BirdDaemon {
 public:
  explicit BirdDaemon(const std::string& dir) : dir_(dir), socket_(dir + "/bird.ctl") {
    std::ofstream(dir + "/bird.conf") << bird_test_conf;
  }
  bool start() {
    daemon_ = std::make_unique<Daemon>(
        std::vector<std::string>{"bird", "-f", "-c", dir_ + "/bird.conf", "-s", socket_, "-P", dir_ + "/bird.pid"},
        dir_ + "/bird.log");
    return wait_for([&] { return std::filesystem::exists(socket_) && daemon_->running(); });
  }
  void stop() {
    daemon_.reset();
    std::filesystem::remove(socket_);
  }
  [[nodiscard]] const std::string& socket() const { return socket_; }
  [[nodiscard]] std::string log() const { return read_file(dir_ + "/bird.log"); }
  [[nodiscard]] pid_t pid() const { return std::stoi(read_file(dir_ + "/bird.pid")); }
  // What birdc says of a protocol's state: "up" or "down".
  [[nodiscard]] std::string state(const std::string& protocol) const {
    const std::string out = run("birdc -s " + socket_ + " show protocols " + protocol);
    return out.find(" up ") != std::string::npos ? "up" : out.find(" down ") != std::string::npos ? "down" : out;
  }

 private:
  std::string dir_, socket_;
  std::unique_ptr<Daemon> daemon_;
};

}  // namespace passgate::integration
