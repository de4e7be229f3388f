// control/bird_client against BIRD 2 itself (Debian's bird2), started per
// test with a private configuration and control socket: the switch the
// health monitor uses (enable/disable of the announcing protocols), its
// errors, a daemon that hangs (SIGSTOP) and one that restarts. A fake server
// stands in only for what BIRD never does: greet wrongly.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <string>
#include <thread>

#include "control/bird_client.hpp"
#include "support/daemons.hpp"

namespace passgate::control {
namespace {

using namespace passgate::integration;
using std::chrono::milliseconds;

#define START_BIRD(bird)                                   \
  REQUIRE_PROGRAM("bird", "bird2");                        \
  TempDir dir;                                             \
  BirdDaemon bird(dir.path());                                   \
  ASSERT_TRUE(bird.start()) << bird.log()

TEST(BirdClient, EnablesAndDisablesARealBirdsProtocols) {
  START_BIRD(bird);
  BirdClient c(bird.socket(), milliseconds(1000));
  EXPECT_EQ(bird.state("announce_pools"), "down") << "the configuration starts it disabled";

  BirdReply r = c.set_protocol("announce_pools", true);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.code, 0);
  ASSERT_FALSE(r.lines.empty());
  EXPECT_EQ(r.lines.front(), "announce_pools: enabled");
  EXPECT_EQ(bird.state("announce_pools"), "up");
  EXPECT_EQ(bird.state("announce_default"), "down") << "only the protocol named";

  r = c.set_protocol("announce_pools", true);
  EXPECT_TRUE(r.ok) << "'already enabled' is success: the monitor repeats its wish every second";
  EXPECT_EQ(r.lines.front(), "announce_pools: already enabled");

  r = c.set_protocol("announce_pools", false);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(bird.state("announce_pools"), "down");
  r = c.set_protocol("announce_pools", false);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.lines.front(), "announce_pools: already disabled");
  EXPECT_TRUE(c.connected()) << "one connection for all of it";

  // A table reply: several lines, continuation lines included.
  r = c.command("show protocols");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_GE(r.lines.size(), 4u);
}

TEST(BirdClient, TheDaemonsErrorsAreErrors) {
  START_BIRD(bird);
  BirdClient c(bird.socket(), milliseconds(1000));
  BirdReply r = c.set_protocol("no_such_protocol", true);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.code, 9001) << "an unknown name is a syntax error to BIRD";
  EXPECT_NE(r.error.find("syntax error"), std::string::npos) << r.error;
  r = c.command("enable \"nothing_matches*\"");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.code, 8003) << "No protocols match";
  EXPECT_TRUE(c.connected()) << "an error reply leaves the connection usable";
  EXPECT_TRUE(c.set_protocol("announce_default", true).ok);
  EXPECT_FALSE(c.command("enable a\nenable b").ok) << "one command per line, never two";
}

TEST(BirdClient, AHungDaemonCostsOneTimeoutAndIsFoundAgain) {
  START_BIRD(bird);
  BirdClient c(bird.socket(), milliseconds(300));
  ASSERT_TRUE(c.set_protocol("announce_pools", true).ok);
  const pid_t pid = bird.pid();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const BirdReply hung = c.set_protocol("announce_pools", false);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ::kill(pid, SIGCONT);
  EXPECT_FALSE(hung.ok);
  EXPECT_EQ(hung.code, 0);
  EXPECT_NE(hung.error.find("no reply within 300 ms"), std::string::npos) << hung.error;
  EXPECT_LT(waited, milliseconds(2000));
  EXPECT_FALSE(c.connected()) << "half a reply would put the stream out of step";
  // Once BIRD runs again, the next call connects anew and is answered.
  const BirdReply again = c.set_protocol("announce_pools", false);
  EXPECT_TRUE(again.ok) << again.error;
  EXPECT_EQ(bird.state("announce_pools"), "down");
}

TEST(BirdClient, ARestartedDaemonIsFoundWithoutHelp) {
  START_BIRD(bird);
  BirdClient c(bird.socket(), milliseconds(500));
  ASSERT_TRUE(c.set_protocol("announce_pools", true).ok);
  bird.stop();
  const BirdReply gone = c.set_protocol("announce_pools", true);
  EXPECT_FALSE(gone.ok);
  EXPECT_EQ(gone.code, 0);
  EXPECT_FALSE(gone.error.empty());
  ASSERT_TRUE(bird.start()) << bird.log();
  EXPECT_EQ(bird.state("announce_pools"), "down") << "a restarted BIRD reads `disabled;` again";
  const BirdReply back = c.set_protocol("announce_pools", true);
  EXPECT_TRUE(back.ok) << back.error;
  EXPECT_EQ(bird.state("announce_pools"), "up");
}

// Something else on the socket: refused at the greeting, not misread.
TEST(BirdClient, AServerThatIsNotBirdIsRefused) {
  TempDir dir;
  const std::string path = dir.path() + "/fake.ctl";
  const int server = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(server, 1), 0);
  std::thread fake([&] {
    const int c = ::accept(server, nullptr, nullptr);
    const char hello[] = "220 smtp.example ESMTP\n";
    (void)!::write(c, hello, sizeof hello - 1);
    std::this_thread::sleep_for(milliseconds(200));
    ::close(c);
  });
  BirdClient c(path, milliseconds(1000));
  const BirdReply r = c.set_protocol("announce_pools", true);
  fake.join();
  ::close(server);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("not BIRD's greeting"), std::string::npos) << r.error;
}

TEST(BirdClient, ReplyLinesAreReadByTheirForm) {
  auto l = parse_bird_line("0011-announce_pools: enabled");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->code, 11);
  EXPECT_FALSE(l->last);
  EXPECT_EQ(l->text, "announce_pools: enabled");
  l = parse_bird_line("0000 ");
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->last);
  EXPECT_EQ(l->text, "");
  l = parse_bird_line(" announce_default: enabled");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->code, -1) << "a continuation line keeps the previous code";
  EXPECT_FALSE(parse_bird_line("0000"));
  EXPECT_FALSE(parse_bird_line("12a4 x"));
  EXPECT_FALSE(parse_bird_line("0001?BIRD"));
  EXPECT_FALSE(parse_bird_line(""));
}

}  // namespace
}  // namespace passgate::control
