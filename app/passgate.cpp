// passgate: the carrier-grade NAT44 gateway. Command line, wiring and
// signals only; the packet path lives in lib/dataplane and lib/nat.
//
//   passgate --config FILE [--stats-interval S] [-- EAL arguments]
//   passgate --check --config FILE
#include <rte_eal.h>
#include <rte_errno.h>

#include <sys/random.h>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <syslog.h>
#include <iostream>
#include <thread>

#include "config/gateway_config.hpp"
#include "control/control_core.hpp"
#include "control/log.hpp"
#include "control/metrics_server.hpp"
#include "control/prometheus.hpp"
#include "control/runtime_access.hpp"
#include "control/telemetry.hpp"
#include "dataplane/gateway.hpp"

namespace po = boost::program_options;
using namespace passgate;

namespace {

std::atomic<bool> stop_requested{false};
std::atomic<bool> reload_requested{false};
void on_signal(int) { stop_requested = true; }
void on_hangup(int) { reload_requested = true; }

constexpr const char* version = "passgate 0.1.0 (NAT44, DPDK 22.11)";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  unsigned stats_interval = 0;
  std::string prometheus_listen;
  std::vector<std::string> eal_extra;
  po::options_description opts("passgate: carrier-grade NAT44 gateway on DPDK\n\nUsage: passgate --config FILE [options] [-- EAL arguments]\n\nOptions");
  opts.add_options()("help,h", "print this help and exit")("version,V", "print the version and exit")(
      "config,c", po::value(&config_path), "YAML configuration file (see conf/README.md)")(
      "check", "validate the configuration, print every problem, exit non-zero on any")(
      "stats-interval", po::value(&stats_interval)->default_value(0),
      "print the counters every S seconds (0: only when stopping)")(
      "prometheus", po::value(&prometheus_listen),
      "serve Prometheus metrics at http://ADDRESS:PORT/metrics; a bare PORT binds 127.0.0.1 only (as in the file); "
      "overrides control.prometheus");
  po::options_description hidden;
  hidden.add_options()("eal", po::value(&eal_extra));
  po::positional_options_description positional;
  positional.add("eal", -1);
  po::options_description all;
  all.add(opts).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "passgate: " << e.what() << "\n\n" << opts << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << opts << "\nEverything after -- goes to the DPDK EAL (for example -- --in-memory -l 0,1).\n";
    return 0;
  }
  if (vm.count("version")) {
    std::cout << version << "\n";
    return 0;
  }
  if (config_path.empty()) {
    std::cerr << "passgate: --config FILE is required (see --help)\n";
    return 2;
  }
  // Read like control.prometheus: loopback unless an address is written.
  if (vm.count("prometheus")) {
    std::string problem;
    const auto listen = config::parse_listen_address(prometheus_listen, &problem);
    if (!listen) {
      std::cerr << "passgate: --prometheus: " << problem << "\n";
      return 2;
    }
    prometheus_listen = *listen;
  }

  config::LoadResult loaded = config::load_gateway_config(config_path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::cerr << config::to_string(e) << "\n";
    std::cerr << fmt::format("passgate: {} error{} in {}; not started\n", loaded.errors.size(),
                             loaded.errors.size() == 1 ? "" : "s", config_path);
    return 1;
  }
  config::GatewayConfig cfg = std::move(*loaded.config);
  if (vm.count("check")) {
    std::cout << fmt::format("{}: OK ({} ports, {} pools, {} static mappings)\n", config_path, cfg.ports.size(),
                             cfg.nat.pools.size(), cfg.nat.static_mappings.size());
    return 0;
  }
  // RFC 6056: port choice must not be guessable from outside, so unless the
  // operator pins a seed (tests, reproducible benchmarks) it comes from the
  // kernel's random source.
  if (!cfg.random_seed_given) {
    std::uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed) {
      std::cerr << "passgate: cannot read a random seed from the kernel\n";
      return 1;
    }
    cfg.nat.random_seed = seed;
  }

  std::vector<std::string> args = dataplane::eal_arguments(cfg, eal_extra);
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  std::cerr << "passgate: EAL";
  for (const auto& a : args) std::cerr << " " << a;
  std::cerr << "\n";
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::cerr << "passgate: DPDK EAL initialisation failed: " << rte_strerror(rte_errno) << "\n";
    return 1;
  }
  if (const auto level = control::parse_level(cfg.control.log_level)) control::set_min_level(*level);
  if (cfg.control.log_to_syslog) control::enable_syslog("passgate", LOG_DAEMON);
  if (prometheus_listen.empty()) prometheus_listen = cfg.control.prometheus;
  // The telemetry socket (passgatectl's way in) for passgate's user only, or
  // a configured group (lib/control/runtime_access.hpp).
  {
    std::string summary, error;
    const std::optional<gid_t> group =
        cfg.control.telemetry_group.empty() ? std::nullopt : std::optional<gid_t>(cfg.control.telemetry_gid);
    if (!control::restrict_runtime_dir(rte_eal_get_runtime_dir(), group, &summary, &error)) {
      control::log(control::Level::error, "{}; not started", error);
      rte_eal_cleanup();
      return 1;
    }
    control::log(control::Level::info, "telemetry socket directory {}{}", summary,
                 group ? fmt::format(" ({})", cfg.control.telemetry_group) : std::string());
  }
  int rc = 0;
  {
    std::string error;
    auto gateway = dataplane::Gateway::create(cfg, &error);
    if (!gateway || !gateway->start(&error)) {
      control::log(control::Level::error, "{}", error);
      rc = 1;
    } else {
      control::ControlCore core(config_path, cfg, *gateway);
      core.start();
      std::unique_ptr<control::MetricsServer> metrics;
      if (!prometheus_listen.empty()) {
        metrics = control::MetricsServer::start(
            prometheus_listen, [&] { return control::render_prometheus(core.snapshot(true)); }, &error);
        if (!metrics) {
          // Asked for and not there: stop now rather than run unwatched.
          control::log(control::Level::error, "{}; stopping", error);
          stop_requested = true;
          rc = 1;
        } else {
          control::log(control::Level::info, "Prometheus metrics at http://{}/metrics", prometheus_listen);
        }
      }
      if (!control::register_telemetry([&] { return core.snapshot(false); }))
        control::log(control::Level::warning, "some /passgate telemetry commands could not be registered");
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      std::signal(SIGHUP, on_hangup);
      control::log(control::Level::notice,
                   "running with {} port(s), {} worker(s), policy {} (digest {}); SIGHUP reloads, SIGINT or SIGTERM stops",
                   cfg.ports.size(), core.snapshot(false).workers, config_path, core.snapshot(false).config.digest);
      auto last = std::chrono::steady_clock::now();
      while (!stop_requested) {
        // Every 10 ms: the event rings are drained well before they fill.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        core.pump_events();
        if (reload_requested.exchange(false)) core.reload();
        if (stats_interval && std::chrono::steady_clock::now() - last >= std::chrono::seconds(stats_interval)) {
          last = std::chrono::steady_clock::now();
          gateway->print(stdout);
          std::fflush(stdout);
        }
      }
      control::log(control::Level::notice, "stopping");
      metrics.reset();
      control::unregister_telemetry_source();
      gateway->stop();
      core.pump_events();  // events of the last moments still reach the collectors
      gateway->print(stdout);
      std::fflush(stdout);
    }
  }
  if (const int cleanup = rte_eal_cleanup(); cleanup != 0) {
    std::cerr << "passgate: DPDK EAL cleanup failed: " << rte_strerror(-cleanup) << "\n";
    if (rc == 0) rc = 1;
  }
  return rc;
}
