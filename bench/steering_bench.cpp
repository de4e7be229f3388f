// RSS steering predictions: lib/steering's byte tables against DPDK's
// rte_softrss / rte_softrss_be on the same keys (per call, 4096 random inputs
// cycled so that nothing folds to a constant).
#include <benchmark/benchmark.h>
#include <rte_thash.h>

#include <cstring>
#include <random>
#include <vector>

#include "steering/rss_ownership.hpp"

namespace {

using namespace passgate::steering;
using passgate::packet::be32;

struct Fixture {
  RssSteering s = *RssSteering::make({.workers = 8, .reta_size = 512});
  RssSteering s12 = *RssSteering::make({.workers = 12, .reta_size = 512});
  std::vector<be32> addr;
  std::vector<std::uint16_t> port;
  alignas(16) std::uint8_t outside_key[40];
  alignas(16) std::uint8_t inside_key[40];
  alignas(16) std::uint32_t outside_key_be[10];
  alignas(16) std::uint32_t inside_key_be[10];
  Fixture() {
    std::mt19937_64 rng(1);
    for (int i = 0; i < 4096; ++i) {
      addr.push_back(be32{static_cast<std::uint32_t>(rng())});
      port.push_back(static_cast<std::uint16_t>(rng()));
    }
    std::memcpy(outside_key, s.outside_key().data(), 40);
    std::memcpy(inside_key, s.inside_key().data(), 40);
    alignas(16) std::uint32_t tmp[10];
    std::memcpy(tmp, outside_key, 40);
    rte_convert_rss_key(tmp, outside_key_be, 40);
    std::memcpy(tmp, inside_key, 40);
    rte_convert_rss_key(tmp, inside_key_be, 40);
  }
};
const Fixture& fx() {
  static const Fixture f;
  return f;
}

void BM_SubscriberTables(benchmark::State& st) {
  const auto& f = fx();
  unsigned i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(f.s.worker_of_subscriber(f.addr[i++ & 4095]));
}
void BM_SubscriberRteSoftrss(benchmark::State& st) {
  const auto& f = fx();
  unsigned i = 0;
  for (auto _ : st) {
    std::uint32_t w = f.addr[i++ & 4095].host();
    benchmark::DoNotOptimize(f.s.worker_of_hash(rte_softrss(&w, 1, f.inside_key)));
  }
}
void BM_SubscriberRteSoftrssBe(benchmark::State& st) {
  const auto& f = fx();
  unsigned i = 0;
  for (auto _ : st) {
    std::uint32_t w = f.addr[i++ & 4095].host();
    benchmark::DoNotOptimize(
        f.s.worker_of_hash(rte_softrss_be(&w, 1, reinterpret_cast<const std::uint8_t*>(f.inside_key_be))));
  }
}
void BM_OutsideTables(benchmark::State& st) {
  const auto& f = fx();
  unsigned i = 0;
  for (auto _ : st) {
    const unsigned k = i++ & 4095;
    benchmark::DoNotOptimize(f.s.worker_of_outside(f.addr[k], f.port[k]));
  }
}
void BM_OutsideRteSoftrss(benchmark::State& st) {
  const auto& f = fx();
  unsigned i = 0;
  for (auto _ : st) {
    const unsigned k = i++ & 4095;
    std::uint32_t w[2] = {f.addr[k].host(), std::uint32_t{f.port[k]} << 16};
    benchmark::DoNotOptimize(f.s.worker_of_hash(rte_softrss(w, 2, f.outside_key)));
  }
}
void BM_OutsideRteSoftrssBe(benchmark::State& st) {
  const auto& f = fx();
  unsigned i = 0;
  for (auto _ : st) {
    const unsigned k = i++ & 4095;
    std::uint32_t w[2] = {f.addr[k].host(), std::uint32_t{f.port[k]} << 16};
    benchmark::DoNotOptimize(
        f.s.worker_of_hash(rte_softrss_be(w, 2, reinterpret_cast<const std::uint8_t*>(f.outside_key_be))));
  }
}
void BM_PortResidue(benchmark::State& st) {
  const auto& f = fx();
  unsigned i = 0;
  for (auto _ : st) {
    const unsigned k = i++;
    benchmark::DoNotOptimize(f.s.port_residue(f.addr[k & 4095], k & 7));
  }
}
void BM_OwnedResiduesW12(benchmark::State& st) {
  const auto& f = fx();
  unsigned i = 0;
  std::uint16_t out[64];
  for (auto _ : st) {
    const unsigned k = i++;
    benchmark::DoNotOptimize(f.s12.owned_residues(f.addr[k & 4095], k % 12, out));
    benchmark::ClobberMemory();
  }
}
void BM_Make(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(RssSteering::make({.workers = 8, .reta_size = 512}));
}

BENCHMARK(BM_SubscriberTables);
BENCHMARK(BM_SubscriberRteSoftrss);
BENCHMARK(BM_SubscriberRteSoftrssBe);
BENCHMARK(BM_OutsideTables);
BENCHMARK(BM_OutsideRteSoftrss);
BENCHMARK(BM_OutsideRteSoftrssBe);
BENCHMARK(BM_PortResidue);
BENCHMARK(BM_OwnedResiduesW12);
BENCHMARK(BM_Make)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
