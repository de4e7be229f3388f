// Control-plane defaults (issue 12, point 5): the telemetry socket and its
// directory are the owner's only unless a group is configured, and the
// commands that list sessions reveal remote endpoints only on an explicit
// switch, at both ends (passgatectl's request and the gateway's answer).
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "control/operator_commands.hpp"
#include "control/runtime_access.hpp"

namespace passgate::control {
namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------ telemetry socket

class RuntimeDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/pg-runtime-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    parent_ = pattern;
    dir_ = parent_ + "/rte";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0777), 0);
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // as a directory left by someone else's umask
    ASSERT_EQ(::chmod(parent_.c_str(), 0700), 0);
    socket_ = dir_ + "/dpdk_telemetry.v2";
    fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    ASSERT_EQ(::chmod(socket_.c_str(), 0777), 0);
    std::ofstream(dir_ + "/config") << "x";
    ASSERT_EQ(::chmod((dir_ + "/config").c_str(), 0644), 0);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    std::error_code ec;
    fs::remove_all(parent_, ec);
  }
  static mode_t mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  static gid_t group_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_gid;
  }
  std::string parent_, dir_, socket_;
  int fd_ = -1;
};

TEST_F(RuntimeDir, OwnerOnlyByDefault) {
  std::string summary, error;
  ASSERT_TRUE(restrict_runtime_dir(dir_, std::nullopt, &summary, &error)) << error;
  EXPECT_EQ(mode_of(dir_), 0700u);
  EXPECT_EQ(mode_of(socket_), 0600u);
  EXPECT_EQ(mode_of(dir_ + "/config"), 0600u) << "other files lose group and other bits";
  EXPECT_EQ(mode_of(parent_), 0700u) << "the parent is left alone without a group";
  EXPECT_NE(summary.find("0700"), std::string::npos) << summary;
  EXPECT_NE(summary.find("1 socket(s) 0600"), std::string::npos) << summary;
}

TEST_F(RuntimeDir, ConfiguredGroupGetsTheSocket) {
  const gid_t group = ::getegid();  // a group this process may give files to, root or not
  std::string summary, error;
  ASSERT_TRUE(restrict_runtime_dir(dir_, group, &summary, &error)) << error;
  EXPECT_EQ(mode_of(dir_), 0750u);
  EXPECT_EQ(group_of(dir_), group);
  EXPECT_EQ(mode_of(socket_), 0660u);
  EXPECT_EQ(group_of(socket_), group);
  EXPECT_EQ(mode_of(dir_ + "/config"), 0600u);
  EXPECT_EQ(mode_of(parent_), 0711u) << "the group's members must pass the parent, not list it";
}

TEST_F(RuntimeDir, SymbolicLinkIsRefused) {
  const std::string link = parent_ + "/link";
  ASSERT_EQ(::symlink(dir_.c_str(), link.c_str()), 0);
  std::string summary, error;
  EXPECT_FALSE(restrict_runtime_dir(link, std::nullopt, &summary, &error));
  EXPECT_NE(error.find("symbolic link"), std::string::npos) << error;
  EXPECT_EQ(mode_of(dir_), 0755u) << "nothing changed through the link";
}

TEST_F(RuntimeDir, DirectoryOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the directory away";
  ASSERT_EQ(::chown(dir_.c_str(), 65534, static_cast<gid_t>(-1)), 0);
  std::string summary, error;
  EXPECT_FALSE(restrict_runtime_dir(dir_, std::nullopt, &summary, &error));
  EXPECT_NE(error.find("owned by uid 65534"), std::string::npos) << error;
  EXPECT_EQ(mode_of(dir_), 0755u);
}

TEST_F(RuntimeDir, MissingDirectoryIsAClearError) {
  std::string summary, error;
  EXPECT_FALSE(restrict_runtime_dir(parent_ + "/absent", std::nullopt, &summary, &error));
  EXPECT_NE(error.find(parent_ + "/absent"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

// ------------------------------------------------------------ destinations switch

TEST(OperatorCommands, SessionListsGoWithoutDestinationsUnlessAsked) {
  EXPECT_EQ(ctl_request({"subscriber", "100.64.0.11"}, false).path, "/passgate/subscriber,100.64.0.11");
  EXPECT_EQ(ctl_request({"subscriber", "100.64.0.11", "10"}, false).path, "/passgate/subscriber,100.64.0.11,10");
  EXPECT_EQ(ctl_request({"subscriber", "100.64.0.11"}, true).path,
            "/passgate/subscriber,100.64.0.11,destinations");
  EXPECT_EQ(ctl_request({"subscriber", "100.64.0.11", "10"}, true).path,
            "/passgate/subscriber,100.64.0.11,10,destinations");
  EXPECT_EQ(ctl_request({"public", "udp", "198.51.100.10", "20308"}, false).path,
            "/passgate/public,udp,198.51.100.10,20308");
  EXPECT_EQ(ctl_request({"public", "udp", "198.51.100.10", "20308"}, true).path,
            "/passgate/public,udp,198.51.100.10,20308,destinations");
}

TEST(OperatorCommands, TheSwitchBelongsToSessionListsOnly) {
  const CtlRequest r = ctl_request({"stats"}, true);
  EXPECT_TRUE(r.path.empty());
  EXPECT_NE(r.error.find("--destinations applies to subscriber, public and lookup only"), std::string::npos) << r.error;
  EXPECT_EQ(r.problem, CtlRequest::Problem::destinations_not_applicable);
  EXPECT_TRUE(reveals_destinations("subscriber"));
  EXPECT_TRUE(reveals_destinations("public"));
  EXPECT_FALSE(reveals_destinations("pools"));
}

TEST(OperatorCommands, UsageAndUnknownCommands) {
  EXPECT_EQ(ctl_request({"pools"}, false).path, "/passgate/pools");
  EXPECT_EQ(ctl_request({"version"}, false).path, "/passgate/config");
  EXPECT_NE(ctl_request({"subscriber"}, false).error.find("usage: passgatectl [--destinations] subscriber"),
            std::string::npos);
  EXPECT_NE(ctl_request({"public", "udp", "198.51.100.10"}, false).error.find("usage:"), std::string::npos);
  EXPECT_NE(ctl_request({"frobnicate"}, false).error.find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_FALSE(ctl_request({}, false).error.empty());
  // passgatectl lists the commands after an unknown one: by the code, not the text.
  EXPECT_EQ(ctl_request({"pools"}, false).problem, CtlRequest::Problem::none);
  EXPECT_EQ(ctl_request({"subscriber"}, false).problem, CtlRequest::Problem::usage);
  EXPECT_EQ(ctl_request({"frobnicate"}, false).problem, CtlRequest::Problem::unknown_command);
  EXPECT_EQ(ctl_request({}, false).problem, CtlRequest::Problem::no_command);
}

TEST(OperatorCommands, GatewayTakesTheSwitchOutOfTheParameters) {
  auto p = split_params("100.64.0.11, 10,destinations");
  EXPECT_TRUE(take_destinations(p));
  EXPECT_EQ(p, (std::vector<std::string>{"100.64.0.11", "10"}));
  p = split_params("100.64.0.11");
  EXPECT_FALSE(take_destinations(p));
  EXPECT_EQ(p, (std::vector<std::string>{"100.64.0.11"}));
  p = split_params(nullptr);
  EXPECT_FALSE(take_destinations(p));
  EXPECT_TRUE(p.empty());
}

TEST(OperatorCommands, SessionLineHidesTheRemoteEndpointByDefault) {
  SessionText s{"udp", "100.64.0.11:40001", "198.51.100.10:20308", "203.0.113.10:9000", "none", 3, 1};
  EXPECT_EQ(session_line(s, false), "udp 100.64.0.11:40001 -> 198.51.100.10:20308 none idle 3s worker 1");
  EXPECT_EQ(session_line(s, true),
            "udp 100.64.0.11:40001 -> 198.51.100.10:20308 remote 203.0.113.10:9000 none idle 3s worker 1");
  EXPECT_EQ(session_line(s, false).find("203.0.113.10"), std::string::npos);
}

}  // namespace
}  // namespace passgate::control
