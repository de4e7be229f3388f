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
#include <iostream>
#include <thread>

#include "config/gateway_config.hpp"
#include "control/metrics_server.hpp"
#include "control/prometheus.hpp"
#include "control/telemetry.hpp"
#include "dataplane/gateway.hpp"

namespace po = boost::program_options;
using namespace passgate;

namespace {

std::atomic<bool> stop_requested{false};
void on_signal(int) { stop_requested = true; }

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
      "serve Prometheus metrics at http://ADDRESS:PORT/metrics (e.g. 127.0.0.1:9469)");
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
  int rc = 0;
  {
    std::string error;
    auto gateway = dataplane::Gateway::create(cfg, &error);
    if (!gateway || !gateway->start(&error)) {
      std::cerr << "passgate: " << error << "\n";
      rc = 1;
    } else {
      std::unique_ptr<control::MetricsServer> metrics;
      if (!prometheus_listen.empty()) {
        metrics = control::MetricsServer::start(
            prometheus_listen, [&] { return control::render_prometheus(gateway->snapshot()); }, &error);
        if (!metrics) std::cerr << "passgate: " << error << "\n";
        else std::cerr << "passgate: Prometheus metrics at http://" << prometheus_listen << "/metrics\n";
      }
      if (!control::register_telemetry([&] { return gateway->snapshot(); }))
        std::cerr << "passgate: some /passgate telemetry commands could not be registered\n";
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      std::cerr << fmt::format("passgate: running with {} port(s); SIGINT or SIGTERM stops it\n", cfg.ports.size());
      auto last = std::chrono::steady_clock::now();
      while (!stop_requested) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (stats_interval && std::chrono::steady_clock::now() - last >= std::chrono::seconds(stats_interval)) {
          last = std::chrono::steady_clock::now();
          gateway->print(stdout);
          std::fflush(stdout);
        }
      }
      std::cerr << "passgate: stopping\n";
      metrics.reset();
      control::unregister_telemetry_source();
      gateway->stop();
      gateway->print(stdout);
      std::fflush(stdout);
    }
  }
  rte_eal_cleanup();
  return rc;
}
