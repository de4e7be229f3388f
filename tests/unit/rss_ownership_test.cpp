// RSS steering (lib/steering) against DPDK's own Toeplitz implementation.
// Every prediction of the library (table-driven) is compared with what
// rte_softrss / rte_softrss_be compute on the installed key followed by the
// RETA lookup a NIC performs; the negative controls show the checks fail
// when the key is not built as documented.
#include "steering/rss_ownership.hpp"
#include "steering/dispatch.hpp"
#include "support/packet_builder.hpp"

#include <gtest/gtest.h>
#include <rte_thash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <tuple>
#include <vector>

namespace {

using namespace passgate::steering;
using passgate::packet::be32;
using passgate::packet::ipv4;

// --- DPDK reference -----------------------------------------------------------

struct alignas(16) AlignedKey {
  std::array<std::uint8_t, rss_key_size> bytes;
};

std::uint32_t rte_hash(const RssKey& key, const HashInput& in) {
  AlignedKey k{key};
  alignas(16) std::uint32_t words[3];
  std::memcpy(words, in.words.data(), sizeof words);
  return rte_softrss(words, in.len, k.bytes.data());
}

// The faster variant DPDK uses with a key converted by rte_convert_rss_key.
struct ConvertedKey {
  alignas(16) std::uint32_t words[rss_key_size / 4];
  explicit ConvertedKey(const RssKey& key) {
    alignas(16) std::uint32_t orig[rss_key_size / 4];
    std::memcpy(orig, key.data(), key.size());
    rte_convert_rss_key(orig, words, static_cast<int>(key.size()));
  }
  std::uint32_t hash(const HashInput& in) const {
    alignas(16) std::uint32_t w[3];
    std::memcpy(w, in.words.data(), sizeof w);
    return rte_softrss_be(w, in.len, reinterpret_cast<const std::uint8_t*>(words));
  }
};

// What the NIC does with the hash: reta[hash & (reta_size - 1)].
unsigned nic_queue(std::uint32_t hash, std::span<const std::uint16_t> reta) {
  return reta[hash & (reta.size() - 1)];
}

be32 random_address(std::mt19937_64& rng) { return be32::from_host(static_cast<std::uint32_t>(rng())); }

std::vector<be32> test_addresses(std::size_t random_count, std::uint64_t seed) {
  std::vector<be32> a = {ipv4(0, 0, 0, 0), ipv4(255, 255, 255, 255), ipv4(192, 0, 2, 1), ipv4(198, 51, 100, 7),
                         ipv4(203, 0, 113, 255), ipv4(100, 64, 0, 1), ipv4(128, 0, 0, 0), ipv4(0, 0, 0, 1)};
  std::mt19937_64 rng(seed);
  while (a.size() < random_count) a.push_back(random_address(rng));
  return a;
}

// Ownership of every port of `addr` as the NIC decides it, checked to be a
// comb: the owner depends only on p % stride, and returns per-worker counts.
// `violations` counts ports whose owner differs from their residue's first owner.
struct OwnershipScan {
  std::vector<int> owner_of_residue;  // -1 = not seen yet
  std::vector<unsigned> ports_per_worker;
  unsigned violations = 0;
};
OwnershipScan scan_with_rte(const RssKey& key, OutsideLayout layout, std::span<const std::uint16_t> reta,
                            unsigned workers, unsigned stride, be32 addr) {
  OwnershipScan s{std::vector<int>(stride, -1), std::vector<unsigned>(workers, 0), 0};
  for (std::uint32_t p = 0; p < 65536; ++p) {
    const unsigned w = nic_queue(rte_hash(key, outside_input(layout, addr, static_cast<std::uint16_t>(p))), reta);
    ++s.ports_per_worker[w];
    int& o = s.owner_of_residue[p % stride];
    if (o < 0) o = static_cast<int>(w);
    else if (o != static_cast<int>(w)) ++s.violations;
  }
  return s;
}

// --- the Toeplitz reference itself --------------------------------------------

// Microsoft's RSS verification suite (IPv4), as in DPDK's test_thash.c.
struct KnownAnswer {
  be32 src, dst;
  std::uint16_t sport, dport;
  std::uint32_t hash_l3, hash_l3l4;
};
const KnownAnswer known_answers[] = {
    {ipv4(66, 9, 149, 187), ipv4(161, 142, 100, 80), 2794, 1766, 0x323e8fc2, 0x51ccc178},
    {ipv4(199, 92, 111, 2), ipv4(65, 69, 140, 83), 14230, 4739, 0xd718262a, 0xc626b0ea},
    {ipv4(24, 19, 198, 95), ipv4(12, 22, 207, 184), 12898, 38024, 0xd2d0a5de, 0x5c2b394a},
    {ipv4(38, 27, 205, 30), ipv4(209, 142, 163, 6), 48228, 2217, 0x82989176, 0xafc7327f},
    {ipv4(153, 39, 163, 191), ipv4(202, 188, 127, 2), 44251, 1303, 0x5d1809c5, 0x10e828a2},
};

TEST(Toeplitz, MicrosoftVerificationSuite) {
  const ConvertedKey converted(microsoft_rss_key);
  for (const auto& v : known_answers) {
    HashInput l3;
    l3.words = {v.src.host(), v.dst.host(), 0};
    l3.len = 2;
    HashInput l4;
    l4.words = {v.src.host(), v.dst.host(), (std::uint32_t{v.sport} << 16) | v.dport};
    l4.len = 3;
    EXPECT_EQ(toeplitz_hash(microsoft_rss_key, l3.span()), v.hash_l3);
    EXPECT_EQ(toeplitz_hash(microsoft_rss_key, l4.span()), v.hash_l3l4);
    EXPECT_EQ(rte_hash(microsoft_rss_key, l3), v.hash_l3);
    EXPECT_EQ(rte_hash(microsoft_rss_key, l4), v.hash_l3l4);
    EXPECT_EQ(converted.hash(l4), v.hash_l3l4);
  }
}

TEST(Toeplitz, ReferenceMatchesRteSoftrssOnRandomKeysAndLengths) {
  std::mt19937_64 rng(1);
  for (int round = 0; round < 2000; ++round) {
    const RssKey key = rss_key_from_seed(rng());
    alignas(16) std::uint32_t words[9];
    const unsigned len = 1 + static_cast<unsigned>(rng() % 9);
    for (auto& w : words) w = static_cast<std::uint32_t>(rng());
    AlignedKey k{key};
    ASSERT_EQ(toeplitz_hash(key, {words, len}), rte_softrss(words, len, k.bytes.data())) << "len " << len;
    alignas(16) std::uint32_t orig[10], conv[10];
    std::memcpy(orig, key.data(), key.size());
    rte_convert_rss_key(orig, conv, 40);
    ASSERT_EQ(toeplitz_hash(key, {words, len}),
              rte_softrss_be(words, len, reinterpret_cast<const std::uint8_t*>(conv)));
  }
}

TEST(Toeplitz, SeededKeysDifferAndAreDeterministic) {
  EXPECT_EQ(rss_key_from_seed(42), rss_key_from_seed(42));
  EXPECT_NE(rss_key_from_seed(42), rss_key_from_seed(43));
}

// --- key construction ----------------------------------------------------------

std::set<unsigned> differing_bits(const RssKey& a, const RssKey& b) {
  std::set<unsigned> d;
  for (unsigned k = 0; k < 320; ++k)
    if (key_bit(a, k) != key_bit(b, k)) d.insert(k);
  return d;
}

TEST(KeyConstruction, PortCombForcesOnlyTheDocumentedBits) {
  for (auto layout : {OutsideLayout::packed, OutsideLayout::in_place}) {
    const unsigned p = port_lsb_index(layout);
    for (unsigned bits = 1; bits <= 11; ++bits) {
      // Start from all ones and all zeros so every forced bit shows up.
      RssKey ones;
      ones.fill(0xff);
      const RssKey from_ones = make_port_comb_key(ones, layout, bits);
      const RssKey from_zeros = make_port_comb_key(RssKey{}, layout, bits);
      std::set<unsigned> zeroed = differing_bits(ones, from_ones), set = differing_bits(RssKey{}, from_zeros);
      std::set<unsigned> expect_zero;
      for (unsigned k = p + 17 - bits; k <= p + 31 - bits; ++k) expect_zero.insert(k);
      EXPECT_EQ(zeroed, expect_zero) << to_string(layout) << " bits " << bits;
      EXPECT_EQ(set, std::set<unsigned>{p + 32 - bits}) << to_string(layout) << " bits " << bits;
    }
    EXPECT_EQ(make_port_comb_key(microsoft_rss_key, layout, 0), microsoft_rss_key);
  }
}

TEST(KeyConstruction, AddressSpreadForcesOnlyTheDocumentedBits) {
  for (unsigned bits = 1; bits <= 11; ++bits) {
    RssKey ones;
    ones.fill(0xff);
    std::set<unsigned> zeroed = differing_bits(ones, make_address_spread_key(ones, bits));
    std::set<unsigned> set = differing_bits(RssKey{}, make_address_spread_key(RssKey{}, bits));
    std::set<unsigned> expect_zero;
    for (unsigned s = bits; s + 2 <= 2 * bits; ++s) expect_zero.insert(62 - s);
    EXPECT_EQ(zeroed, expect_zero) << "bits " << bits;
    EXPECT_EQ(set, std::set<unsigned>{63 - bits}) << "bits " << bits;
  }
}

TEST(KeyConstruction, InvalidParametersAreRefused) {
  SteeringError e{};
  EXPECT_FALSE(RssSteering::make({.workers = 0}, &e));
  EXPECT_EQ(e, SteeringError::no_workers);
  EXPECT_FALSE(RssSteering::make({.workers = 2, .reta_size = 100}, &e));
  EXPECT_EQ(e, SteeringError::reta_size_not_power_of_two);
  EXPECT_FALSE(RssSteering::make({.workers = 2, .reta_size = 0}, &e));
  EXPECT_EQ(e, SteeringError::reta_size_not_power_of_two);
  EXPECT_FALSE(RssSteering::make({.workers = 2, .reta_size = 131072}, &e));
  EXPECT_EQ(e, SteeringError::reta_size_not_power_of_two);
  EXPECT_FALSE(RssSteering::make({.workers = 129, .reta_size = 128}, &e));
  EXPECT_EQ(e, SteeringError::more_workers_than_reta_entries);
  EXPECT_TRUE(RssSteering::make({.workers = 128, .reta_size = 128}, &e));
  EXPECT_EQ(e, SteeringError::none);
  EXPECT_STRNE(to_string(SteeringError::keys_conflict), "?");
}

// --- power-of-two worker counts: the stride-W comb ---------------------------------

using CombParam = std::tuple<unsigned /*workers*/, unsigned /*reta*/, OutsideLayout, bool /*shared key*/>;

class Comb : public ::testing::TestWithParam<CombParam> {
 protected:
  void SetUp() override {
    auto [w, r, layout, shared] = GetParam();
    SteeringError e{};
    auto s = RssSteering::make({.workers = w, .reta_size = r, .outside_layout = layout, .shared_key = shared}, &e);
    ASSERT_TRUE(s) << to_string(e);
    steering.emplace(std::move(*s));
  }
  std::optional<RssSteering> steering;
};

TEST_P(Comb, ShapeOfTheConfiguration) {
  const auto& s = *steering;
  const unsigned w = std::get<0>(GetParam());
  EXPECT_EQ(s.workers(), w);
  EXPECT_EQ(s.stride(), w);
  EXPECT_TRUE(s.one_residue_per_worker());
  ASSERT_EQ(s.reta().size(), std::get<1>(GetParam()));
  for (std::size_t i = 0; i < s.reta().size(); ++i) EXPECT_EQ(s.reta()[i], i % w);
  // At most 16 outside and b inside bits differ from the base keys.
  EXPECT_LE(differing_bits(s.outside_key(), microsoft_rss_key).size(), std::get<3>(GetParam()) ? 32u : 16u);
}

// All 65536 ports of a few addresses: the NIC's choice (rte_softrss + RETA) is
// a comb, matches the fast path and port_residue, and splits ports evenly.
TEST_P(Comb, EveryPortOfAnAddressFollowsTheCombWithRteSoftrss) {
  const auto& s = *steering;
  const auto [w, r, layout, shared] = GetParam();
  for (be32 a : test_addresses(32, 7)) {
    const OwnershipScan scan = scan_with_rte(s.outside_key(), layout, s.reta(), w, w, a);
    ASSERT_EQ(scan.violations, 0u) << "owner depends on more than port % W";
    for (unsigned k = 0; k < w; ++k) {
      EXPECT_EQ(scan.ports_per_worker[k], 65536u / w);
      const std::uint16_t res = s.port_residue(a, k);
      ASSERT_LT(res, w);
      EXPECT_EQ(scan.owner_of_residue[res], static_cast<int>(k)) << "worker " << k;
    }
    for (std::uint32_t p = 0; p < 65536; p += 97) {
      const auto port = static_cast<std::uint16_t>(p);
      const std::uint32_t h = rte_hash(s.outside_key(), outside_input(layout, a, port));
      ASSERT_EQ(s.outside_hash(a, port), h);
      ASSERT_EQ(s.worker_of_outside(a, port), nic_queue(h, s.reta()));
    }
  }
}

// Thousands of addresses, random ports, DPDK's converted-key variant.
TEST_P(Comb, ThousandsOfAddressesWithConvertedKey) {
  const auto& s = *steering;
  const auto [w, r, layout, shared] = GetParam();
  const ConvertedKey conv(s.outside_key());
  std::mt19937_64 rng(11);
  for (be32 a : test_addresses(4096, 13)) {
    std::uint16_t residue[64];
    for (unsigned k = 0; k < w; ++k) residue[k] = s.port_residue(a, k);
    for (int i = 0; i < 64; ++i) {
      const auto port = static_cast<std::uint16_t>(rng());
      const std::uint32_t h = conv.hash(outside_input(layout, a, port));
      ASSERT_EQ(h, rte_hash(s.outside_key(), outside_input(layout, a, port)));
      const unsigned owner = nic_queue(h, s.reta());
      ASSERT_EQ(port % w, residue[owner]) << "port " << port << " owner " << owner;
      ASSERT_EQ(s.worker_of_outside(a, port), owner);
    }
  }
}

// Every worker owns exactly 1/W of every address's ports, one residue each
// (fast path, validated against rte_softrss above), for many addresses.
TEST_P(Comb, ResiduesPartitionThePortsOfEveryAddress) {
  const auto& s = *steering;
  const unsigned w = std::get<0>(GetParam());
  for (be32 a : test_addresses(1024, 17)) {
    std::vector<unsigned> count(w, 0);
    std::vector<bool> residue_seen(w, false);
    for (unsigned k = 0; k < w; ++k) {
      const auto res = s.port_residue(a, k);
      ASSERT_FALSE(residue_seen[res]);
      residue_seen[res] = true;
      std::uint16_t out[2];
      ASSERT_EQ(s.owned_residues(a, k, out), 1u);
      EXPECT_EQ(out[0], res);
    }
    for (std::uint32_t p = 0; p < 65536; ++p) {
      const unsigned owner = s.worker_of_outside(a, static_cast<std::uint16_t>(p));
      ++count[owner];
      if (p % w != s.port_residue(a, owner)) FAIL() << "port " << p << " of worker " << owner;
    }
    for (unsigned k = 0; k < w; ++k) ASSERT_EQ(count[k], 65536u / w);
  }
}

// ICMP, ESP, GRE, fragments: the NIC hashes the address alone.
TEST_P(Comb, PortlessPacketsGoToTheOwnerOfResidueZero) {
  const auto& s = *steering;
  const auto layout = std::get<2>(GetParam());
  for (be32 a : test_addresses(2048, 19)) {
    const unsigned nic = nic_queue(rte_hash(s.outside_key(), outside_input_portless(layout, a)), s.reta());
    ASSERT_EQ(s.worker_of_outside_portless(a), nic);
    ASSERT_EQ(s.worker_of_outside(a, 0), nic);
    ASSERT_EQ(s.port_residue(a, nic), 0);
  }
}

TEST_P(Comb, SubscriberHashingMatchesRteSoftrssAndIsBalanced) {
  const auto& s = *steering;
  const unsigned w = std::get<0>(GetParam());
  const ConvertedKey conv(s.inside_key());
  constexpr unsigned n = 100000;
  std::vector<unsigned> count(w, 0);
  std::mt19937_64 rng(23);
  for (unsigned i = 0; i < n; ++i) {
    const be32 a = random_address(rng);
    const std::uint32_t h = rte_hash(s.inside_key(), inside_input(a));
    ASSERT_EQ(conv.hash(inside_input(a)), h);
    ASSERT_EQ(s.inside_hash(a), h);
    const unsigned k = nic_queue(h, s.reta());
    ASSERT_EQ(s.worker_of_subscriber(a), k);
    ++count[k];
  }
  // Binomial: within 6 standard deviations of n / W.
  const double expect = double(n) / w, sigma = std::sqrt(n * (1.0 / w) * (1.0 - 1.0 / w));
  for (unsigned k = 0; k < w; ++k) EXPECT_LE(std::abs(count[k] - expect), 6 * sigma + 0.5) << "worker " << k;
}

// A CGNAT subscriber pool is a contiguous range: it splits exactly.
TEST_P(Comb, ContiguousSubscriberRangesSplitExactly) {
  const auto& s = *steering;
  const unsigned w = std::get<0>(GetParam());
  std::vector<unsigned> count(w, 0);
  const std::uint32_t base = ipv4(100, 64, 0, 0).host();
  for (std::uint32_t i = 0; i < 100000; ++i) ++count[s.worker_of_subscriber(be32::from_host(base + i))];
  const auto [lo, hi] = std::minmax_element(count.begin(), count.end());
  EXPECT_LE(*hi - *lo, 1u);
  // Every aligned block of W consecutive addresses meets every worker once.
  std::mt19937_64 rng(29);
  for (int blk = 0; blk < 10000; ++blk) {
    const std::uint32_t first = static_cast<std::uint32_t>(rng()) & ~(w - 1);
    std::vector<bool> seen(w, false);
    for (unsigned i = 0; i < w; ++i) {
      const unsigned k = nic_queue(rte_hash(s.inside_key(), inside_input(be32::from_host(first + i))), s.reta());
      ASSERT_FALSE(seen[k]) << "block at " << first;
      seen[k] = true;
    }
  }
}

std::string comb_name(const ::testing::TestParamInfo<CombParam>& info) {
  auto [w, r, layout, shared] = info.param;
  // Appended piece by piece: "literal" + std::string trips GCC 12's -Wrestrict.
  std::string name = "W";
  name += std::to_string(w);
  name += "_reta";
  name += std::to_string(r);
  name += '_';
  name += to_string(layout);
  if (shared) name += "_shared";
  return name;
}

INSTANTIATE_TEST_SUITE_P(PowerOfTwo, Comb,
                         ::testing::Combine(::testing::Values(1u, 2u, 4u, 8u), ::testing::Values(128u, 512u),
                                            ::testing::Values(OutsideLayout::packed, OutsideLayout::in_place),
                                            ::testing::Values(false)),
                         comb_name);
INSTANTIATE_TEST_SUITE_P(Wide, Comb,
                         ::testing::Values(CombParam{16, 512, OutsideLayout::packed, false},
                                           CombParam{32, 512, OutsideLayout::in_place, false},
                                           CombParam{64, 2048, OutsideLayout::packed, false}),
                         comb_name);
INSTANTIATE_TEST_SUITE_P(SharedKey, Comb,
                         ::testing::Combine(::testing::Values(2u, 4u, 8u), ::testing::Values(128u, 512u),
                                            ::testing::Values(OutsideLayout::packed, OutsideLayout::in_place),
                                            ::testing::Values(true)),
                         comb_name);

// --- worker counts that are not powers of two: residues modulo reta_size -----------

using WideParam = std::tuple<unsigned /*workers*/, unsigned /*reta*/, unsigned /*stride, 0 = default*/>;
class ResidueSets : public ::testing::TestWithParam<WideParam> {};

TEST_P(ResidueSets, OwnershipIsAUnionOfStrideCombs) {
  const auto [w, r, stride_param] = GetParam();
  SteeringError e{};
  auto made = RssSteering::make({.workers = w, .reta_size = r, .stride = stride_param}, &e);
  ASSERT_TRUE(made) << to_string(e);
  const auto& s = *made;
  const unsigned stride = stride_param ? stride_param : r;
  EXPECT_EQ(s.stride(), stride);
  EXPECT_FALSE(s.one_residue_per_worker());
  for (std::size_t i = 0; i < s.reta().size(); ++i) ASSERT_EQ(s.reta()[i], (i % stride) % w);
  std::vector<std::uint16_t> buf(s.max_residues_per_worker());
  for (be32 a : test_addresses(6, 31)) {
    std::vector<int> owner(stride, -1);
    for (unsigned k = 0; k < w; ++k) {
      const std::size_t n = s.owned_residues(a, k, buf);
      EXPECT_TRUE(n == stride / w || n == stride / w + 1) << n;
      ASSERT_TRUE(std::is_sorted(buf.begin(), buf.begin() + static_cast<long>(n)));
      EXPECT_EQ(s.port_residue(a, k), buf[0]);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(owner[buf[i]], -1) << "residue owned twice";
        owner[buf[i]] = static_cast<int>(k);
      }
    }
    ASSERT_EQ(std::count(owner.begin(), owner.end(), -1), 0) << "residue owned by nobody";
    const OwnershipScan scan = scan_with_rte(s.outside_key(), s.outside_layout(), s.reta(), w, stride, a);
    ASSERT_EQ(scan.violations, 0u);
    for (unsigned res = 0; res < stride; ++res) ASSERT_EQ(scan.owner_of_residue[res], owner[res]) << "residue " << res;
    const unsigned q = 65536 / stride;
    for (unsigned k = 0; k < w; ++k)
      EXPECT_TRUE(scan.ports_per_worker[k] == (stride / w) * q || scan.ports_per_worker[k] == (stride / w + 1) * q);
  }
  // Subscribers: every aligned block of `stride` consecutive addresses meets
  // every RETA residue once.
  std::mt19937_64 rng(37);
  for (int blk = 0; blk < 200; ++blk) {
    const std::uint32_t first = static_cast<std::uint32_t>(rng()) & ~(stride - 1);
    std::vector<bool> seen(stride, false);
    for (unsigned i = 0; i < stride; ++i) {
      const std::uint32_t h = rte_hash(s.inside_key(), inside_input(be32::from_host(first + i)));
      ASSERT_FALSE(seen[h & (stride - 1)]);
      seen[h & (stride - 1)] = true;
      ASSERT_EQ(s.worker_of_subscriber(be32::from_host(first + i)), nic_queue(h, s.reta()));
    }
  }
}

std::string wide_name(const ::testing::TestParamInfo<WideParam>& info) {
  std::string name = "W";
  name += std::to_string(std::get<0>(info.param));
  name += "_reta";
  name += std::to_string(std::get<1>(info.param));
  if (std::get<2>(info.param)) {
    name += "_stride";
    name += std::to_string(std::get<2>(info.param));
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(NotPowerOfTwo, ResidueSets,
                         ::testing::Combine(::testing::Values(3u, 5u, 6u, 12u), ::testing::Values(128u, 512u),
                                            ::testing::Values(0u)),
                         wide_name);
INSTANTIATE_TEST_SUITE_P(ChosenStride, ResidueSets,
                         ::testing::Values(WideParam{12, 512, 128}, WideParam{6, 2048, 64}, WideParam{3, 512, 4},
                                           WideParam{4, 512, 32}),
                         wide_name);

TEST(ResidueSetsErrors, StrideMustFit) {
  SteeringError e{};
  EXPECT_FALSE(RssSteering::make({.workers = 6, .reta_size = 512, .stride = 4}, &e));
  EXPECT_EQ(e, SteeringError::bad_stride);
  EXPECT_FALSE(RssSteering::make({.workers = 6, .reta_size = 512, .stride = 1024}, &e));
  EXPECT_EQ(e, SteeringError::bad_stride);
  EXPECT_FALSE(RssSteering::make({.workers = 6, .reta_size = 512, .stride = 96}, &e));
  EXPECT_EQ(e, SteeringError::bad_stride);
}

// --- negative controls: the checks above do catch a wrong key --------------------

std::vector<std::uint16_t> reta_for(unsigned w, unsigned r) {
  std::vector<std::uint16_t> reta(r);
  for (unsigned i = 0; i < r; ++i) reta[i] = static_cast<std::uint16_t>(i % w);
  return reta;
}

TEST(NegativeControl, UnmodifiedKeyIsNotAComb) {
  const auto reta = reta_for(4, 512);
  for (auto layout : {OutsideLayout::packed, OutsideLayout::in_place}) {
    const OwnershipScan scan = scan_with_rte(microsoft_rss_key, layout, reta, 4, 4, ipv4(192, 0, 2, 1));
    EXPECT_GT(scan.violations, 0u) << to_string(layout);
  }
}

// Undo each forced bit in turn: every one of them is necessary.
TEST(NegativeControl, EveryForcedBitIsNecessary) {
  for (auto layout : {OutsideLayout::packed, OutsideLayout::in_place}) {
    auto s = RssSteering::make({.workers = 8, .reta_size = 128, .outside_layout = layout});
    ASSERT_TRUE(s);
    // b = 3: zeros at k[p + 14 .. p + 28], the anti-diagonal one at k[p + 29].
    const unsigned p = port_lsb_index(layout);
    std::vector<unsigned> bits_to_flip;
    for (unsigned k = p + 14; k <= p + 29; ++k) bits_to_flip.push_back(k);
    ASSERT_EQ(differing_bits(make_port_comb_key(RssKey{}, layout, 3), RssKey{}), std::set<unsigned>{p + 29});
    for (unsigned k : bits_to_flip) {
      RssKey broken = s->outside_key();
      set_key_bit(broken, k, !key_bit(broken, k));
      const OwnershipScan scan = scan_with_rte(broken, layout, s->reta(), 8, 8, ipv4(203, 0, 113, 9));
      const bool uneven = std::any_of(scan.ports_per_worker.begin(), scan.ports_per_worker.end(),
                                      [](unsigned c) { return c != 65536 / 8; });
      EXPECT_TRUE(scan.violations > 0 || uneven) << to_string(layout) << " key bit " << k;
    }
  }
}

TEST(NegativeControl, UnforcedInsideKeyCanSplitARangeUnevenly) {
  // With a key whose low address bits do not reach the low hash bits, a
  // contiguous range lands on one worker: the range test would catch it.
  RssKey flat{};
  flat[0] = 0x80;  // only k[0]: hash = address bit 0 (MSB) at hash bit 31
  std::vector<unsigned> count(4, 0);
  const auto reta = reta_for(4, 128);
  for (std::uint32_t i = 0; i < 1024; ++i)
    ++count[nic_queue(rte_hash(flat, inside_input(be32::from_host(ipv4(100, 64, 0, 0).host() + i))), reta)];
  EXPECT_EQ(count[0], 1024u);
}

// VPN passthrough by server (worker_of_server): the same answer from every
// RssSteering built with the same parameters (every worker reads one), in
// range for any worker count, and servers that differ only in their low
// bits (a provider's VPN concentrators side by side) spread over all workers.
TEST(ServerOwnership, CommonInRangeAndSpread) {
  for (const unsigned w : {1u, 2u, 3u, 4u, 6u, 8u}) {
    SCOPED_TRACE(w);
    SteeringParams p;
    p.workers = w;
    const auto a = RssSteering::make(p), b = RssSteering::make(p);
    ASSERT_TRUE(a && b);
    std::vector<unsigned> count(w, 0);
    for (unsigned i = 0; i < 1024; ++i) {
      const be32 server = be32::from_host(ipv4(203, 0, 112, 0).host() + i);
      const unsigned owner = a->worker_of_server(server);
      ASSERT_LT(owner, w);
      EXPECT_EQ(owner, b->worker_of_server(server));
      ++count[owner];
    }
    for (unsigned k = 0; k < w; ++k) {
      EXPECT_GT(count[k], 1024 / w * 3 / 4) << "worker " << k;
      EXPECT_LT(count[k], 1024 / w * 5 / 4 + 1) << "worker " << k;
    }
    // Eight consecutive servers reach more than one worker.
    std::set<unsigned> eight;
    for (unsigned i = 1; i <= 8; ++i) eight.insert(a->worker_of_server(ipv4(203, 0, 113, static_cast<std::uint8_t>(i))));
    if (w > 1) {
      EXPECT_GT(eight.size(), 1u);
    }
  }
  SteeringParams p;
  p.workers = 4;
  const auto a = RssSteering::make(p);
  p.server_key ^= 1234567;
  const auto b = RssSteering::make(p);
  unsigned differ = 0;
  for (unsigned i = 0; i < 256; ++i)
    differ += a->worker_of_server(ipv4(198, 18, 0, static_cast<std::uint8_t>(i))) !=
              b->worker_of_server(ipv4(198, 18, 0, static_cast<std::uint8_t>(i)));
  EXPECT_GT(differ, 128u) << "the key changes the assignment";
}

// The dispatch rules for VPN (issue 17.3): ESP, GRE and PPTP control by the
// server, both directions, fragments and quoted packets included; other
// traffic as before.
TEST(ServerOwnership, DispatchRulesSteerVpnByTheServer) {
  using namespace passgate::testing;
  SteeringParams params;
  params.workers = 4;
  const auto rss = RssSteering::make(params);
  ASSERT_TRUE(rss);
  const DispatchRules rules{&*rss};
  const be32 sub = ipv4(100, 64, 0, 10), pub = ipv4(198, 51, 100, 10);
  std::set<unsigned> seen;
  for (unsigned k = 0; k < 16; ++k) {
    const be32 srv = ipv4(203, 0, 113, static_cast<std::uint8_t>(k + 1));
    const unsigned w = rss->worker_of_server(srv);
    seen.insert(w);
    const Bytes esp_out = esp_packet({sub, srv}, 0x100, 1);
    EXPECT_EQ(owner_outbound(rules, esp_out, 9), w);
    EXPECT_EQ(owner_outbound(rules, gre_packet({sub, srv}, 1, true, 5), 9), w);
    EXPECT_EQ(owner_outbound(rules, tcp_packet({sub, srv}, 40000, 1723, 0x02), 9), w) << "PPTP control";
    EXPECT_EQ(owner_outbound(rules, tcp_packet({sub, srv}, 40000, 443, 0x02), 9), rss->worker_of_subscriber(sub));
    for (const Bytes& f : fragment(esp_out, 16)) EXPECT_EQ(owner_outbound(rules, f, 9), w) << "every fragment";
    const Bytes esp_in = esp_packet({srv, pub}, 0x200, 1);
    EXPECT_EQ(owner_inbound(rules, esp_in, 9), w);
    EXPECT_EQ(owner_inbound(rules, gre_packet({srv, pub}, 0, false, 0), 9), w);
    // Fragments meet at the rendezvous, which learns the owner from the first.
    const auto pieces = fragment(esp_in, 16);
    for (const Bytes& f : pieces) EXPECT_EQ(owner_inbound(rules, f, 9), rss->worker_of_outside_portless(pub));
    EXPECT_EQ(owner_inbound_by_transport(rules, pieces[0], 9), w);
    // An error about our ESP to the server: the server's worker.
    const Bytes esp_sent = esp_packet({pub, srv}, 0x100, 1);
    EXPECT_EQ(owner_inbound(rules, icmp_error({ipv4(192, 0, 2, 1), pub}, 3, 4, esp_sent), 9), w);
  }
  EXPECT_GE(seen.size(), 3u) << "16 servers over 4 workers";
}

}  // namespace

// Fragments from outside (issue 17.4): the rendezvous worker's table of
// which worker owns a datagram, bounded, expiring, evictions reported.
#include "steering/fragment_owners.hpp"

namespace passgate::steering {
namespace {

FragmentKey key_of(std::uint16_t id) {
  FragmentKey k;
  k.src = packet::ipv4(203, 0, 113, 9);
  k.dst = packet::ipv4(198, 51, 100, 10);
  k.id = id;
  k.proto = 17;
  return k;
}

TEST(FragmentOwners, RemembersUntilExpiryAndReportsEvictions) {
  FragmentOwners t(8, 2026);  // one probe window: the ninth live datagram evicts
  ASSERT_EQ(t.capacity(), 8u);
  EXPECT_FALSE(t.find(key_of(1), 0).has_value());
  for (std::uint16_t id = 1; id <= 8; ++id) EXPECT_FALSE(t.remember(key_of(id), id % 4, 0, 1000 + id));
  for (std::uint16_t id = 1; id <= 8; ++id) EXPECT_EQ(t.find(key_of(id), 500), id % 4u);
  EXPECT_FALSE(t.remember(key_of(3), 2, 500, 2000)) << "a repeated first fragment refreshes its entry";
  EXPECT_EQ(t.find(key_of(3), 1500), 2u);
  EXPECT_TRUE(t.remember(key_of(9), 1, 500, 3000)) << "full: a live entry gave way";
  EXPECT_FALSE(t.find(key_of(1), 500).has_value()) << "the one closest to expiry";
  EXPECT_EQ(t.find(key_of(9), 500), 1u);
  EXPECT_FALSE(t.find(key_of(2), 1002).has_value()) << "expired";
  EXPECT_FALSE(t.remember(key_of(10), 0, 1500, 4000)) << "an expired slot is free";
}

TEST(FragmentOwners, ReadsOnlyFragments) {
  std::vector<std::uint8_t> ip(28, 0);
  ip[0] = 0x45;
  ip[9] = 17;
  EXPECT_FALSE(fragment_info(ip).has_value()) << "not fragmented";
  ip[6] = 0x20;  // MF, offset 0: the first fragment
  ASSERT_TRUE(fragment_info(ip).has_value());
  EXPECT_TRUE(fragment_info(ip)->first);
  ip[6] = 0x00, ip[7] = 0x10;  // offset 128 bytes, last fragment
  ASSERT_TRUE(fragment_info(ip).has_value());
  EXPECT_FALSE(fragment_info(ip)->first);
  EXPECT_FALSE(fragment_info(std::span<const std::uint8_t>(ip.data(), 19)).has_value()) << "truncated";
}

}  // namespace
}  // namespace passgate::steering
