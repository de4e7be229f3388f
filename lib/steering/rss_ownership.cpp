// Key construction and table set-up for RSS steering (see rss_ownership.hpp).
#include "steering/rss_ownership.hpp"

#include <algorithm>
#include <bit>

namespace passgate::steering {

namespace {

constexpr std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The 32 key bits starting at bit k.
std::uint32_t key_window(const RssKey& key, unsigned k) {
  std::uint32_t w = 0;
  for (unsigned i = 0; i < 32; ++i) w = (w << 1) | (key_bit(key, k + i) ? 1u : 0u);
  return w;
}

// Low `bits` hash bits as a function of the low `bits` bits of a field whose
// LSB sits at input index `lsb`: column q = hash of field value 1 << q.
// Returns the forward map of all 2^bits values (bijective iff a permutation).
std::vector<std::uint16_t> low_bits_map(const RssKey& key, unsigned lsb, unsigned bits) {
  const std::uint32_t mask = (bits >= 32) ? ~0u : ((1u << bits) - 1);
  std::array<std::uint32_t, 16> column{};
  for (unsigned q = 0; q < bits; ++q) column[q] = key_window(key, lsb - q) & mask;
  std::vector<std::uint16_t> fwd(std::size_t{1} << bits);
  for (std::uint32_t x = 0; x < fwd.size(); ++x) {
    std::uint32_t y = 0;
    for (unsigned q = 0; q < bits; ++q)
      if ((x >> q) & 1u) y ^= column[q];
    fwd[x] = static_cast<std::uint16_t>(y);
  }
  return fwd;
}

bool is_permutation_of_range(const std::vector<std::uint16_t>& fwd) {
  std::vector<bool> seen(fwd.size(), false);
  for (auto y : fwd) {
    if (y >= fwd.size() || seen[y]) return false;
    seen[y] = true;
  }
  return true;
}

// Input index of the LSB of the inside source address (word 0).
constexpr unsigned inside_address_lsb = 31;

}  // namespace

RssKey rss_key_from_seed(std::uint64_t seed) {
  RssKey key{};
  std::uint64_t state = seed;
  for (std::size_t i = 0; i < key.size(); i += 8) {
    std::uint64_t v = splitmix64(state);
    for (std::size_t b = 0; b < 8 && i + b < key.size(); ++b) key[i + b] = static_cast<std::uint8_t>(v >> (8 * b));
  }
  return key;
}

std::uint32_t toeplitz_hash(const RssKey& key, std::span<const std::uint32_t> words) {
  std::uint32_t hash = 0;
  for (std::size_t w = 0; w < words.size(); ++w)
    for (unsigned bit = 0; bit < 32; ++bit)
      if ((words[w] >> (31 - bit)) & 1u) hash ^= key_window(key, static_cast<unsigned>(32 * w + bit));
  return hash;
}

const char* to_string(OutsideLayout l) {
  switch (l) {
    case OutsideLayout::packed: return "packed";
    case OutsideLayout::in_place: return "in_place";
  }
  return "?";
}

const char* to_string(SteeringError e) {
  switch (e) {
    case SteeringError::none: return "none";
    case SteeringError::no_workers: return "at least one worker is needed";
    case SteeringError::reta_size_not_power_of_two: return "RETA size must be a power of two between 1 and 65536";
    case SteeringError::more_workers_than_reta_entries: return "more workers than RETA entries";
    case SteeringError::bad_stride: return "stride must be a power of two between the worker count and the RETA size";
    case SteeringError::keys_conflict: return "RSS key constraints conflict";
  }
  return "?";
}

HashInput outside_input(OutsideLayout l, be32 dst, std::uint16_t dst_port) {
  HashInput in;
  if (l == OutsideLayout::packed) {
    in.words = {dst.host(), std::uint32_t{dst_port} << 16, 0};
    in.len = 2;
  } else {
    in.words = {0, dst.host(), dst_port};  // {src, dst, sport << 16 | dport}
    in.len = 3;
  }
  return in;
}

HashInput outside_input_portless(OutsideLayout l, be32 dst) {
  HashInput in;
  if (l == OutsideLayout::packed) {
    in.words = {dst.host(), 0, 0};
    in.len = 1;
  } else {
    in.words = {0, dst.host(), 0};
    in.len = 2;
  }
  return in;
}

HashInput inside_input(be32 src) {
  HashInput in;
  in.words = {src.host(), 0, 0};
  in.len = 1;
  return in;
}

RssKey make_port_comb_key(RssKey key, OutsideLayout l, unsigned bits) {
  if (bits == 0) return key;
  const unsigned p = port_lsb_index(l);
  // Port bit q reaches hash bit j through key bit p + 31 - (q + j).
  for (unsigned s = bits; s <= bits + 14; ++s) set_key_bit(key, p + 31 - s, false);  // q >= bits
  set_key_bit(key, p + 32 - bits, true);  // s = bits - 1: the anti-diagonal
  return key;
}

RssKey make_address_spread_key(RssKey key, unsigned bits) {
  if (bits == 0) return key;
  const unsigned p = inside_address_lsb;
  // Inside the low bits x low bits block, zero the entries below the
  // anti-diagonal (s in [bits, 2 bits - 2]) and set the anti-diagonal.
  for (unsigned s = bits; s + 2 <= 2 * bits; ++s) set_key_bit(key, p + 31 - s, false);
  set_key_bit(key, p + 32 - bits, true);
  return key;
}

std::optional<RssSteering> RssSteering::make(const SteeringParams& p, SteeringError* error) {
  auto fail = [&](SteeringError e) -> std::optional<RssSteering> {
    if (error) *error = e;
    return std::nullopt;
  };
  if (p.workers == 0) return fail(SteeringError::no_workers);
  if (p.reta_size == 0 || p.reta_size > 65536 || !std::has_single_bit(p.reta_size))
    return fail(SteeringError::reta_size_not_power_of_two);
  if (p.workers > p.reta_size) return fail(SteeringError::more_workers_than_reta_entries);

  RssSteering s;
  s.workers_ = p.workers;
  s.server_key_ = p.server_key;
  s.layout_ = p.outside_layout;
  s.reta_mask_ = p.reta_size - 1;
  // With W a power of two only log2(W) index bits choose the worker.
  const unsigned stride = p.stride != 0 ? p.stride : std::has_single_bit(p.workers) ? p.workers : p.reta_size;
  if (!std::has_single_bit(stride) || stride < p.workers || stride > p.reta_size)
    return fail(SteeringError::bad_stride);
  const auto bits = static_cast<unsigned>(std::countr_zero(stride));
  s.stride_mask_ = stride - 1;

  s.outside_key_ = make_port_comb_key(p.outside_base_key, p.outside_layout, bits);
  if (p.shared_key) {
    s.outside_key_ = make_address_spread_key(s.outside_key_, bits);
    s.inside_key_ = s.outside_key_;
  } else {
    s.inside_key_ = make_address_spread_key(p.inside_base_key, bits);
  }

  // Check both properties on the final keys (the shared key must keep both).
  const auto port_map = low_bits_map(s.outside_key_, port_lsb_index(p.outside_layout), bits);
  const auto spread_map = low_bits_map(s.inside_key_, inside_address_lsb, bits);
  if (!is_permutation_of_range(port_map) || !is_permutation_of_range(spread_map))
    return fail(SteeringError::keys_conflict);
  // ...and that the high port bits stay out of the low hash bits.
  for (unsigned q = bits; q < 16; ++q) {
    const auto h = toeplitz_hash(s.outside_key_,
                                 outside_input(p.outside_layout, be32{0}, static_cast<std::uint16_t>(1u << q)).span());
    if ((h & s.stride_mask_) != 0) return fail(SteeringError::keys_conflict);
  }

  s.residue_of_index_.assign(stride, 0);
  for (std::uint32_t x = 0; x < stride; ++x) s.residue_of_index_[port_map[x]] = static_cast<std::uint16_t>(x);

  s.reta_.resize(p.reta_size);
  for (std::uint32_t i = 0; i < p.reta_size; ++i) s.reta_[i] = static_cast<std::uint16_t>((i & s.stride_mask_) % p.workers);

  // Byte tables (linearity): raw byte k of a be32 is the (k)th byte on the wire.
  for (unsigned k = 0; k < 4; ++k) {
    for (unsigned v = 0; v < 256; ++v) {
      be32 a{static_cast<std::uint32_t>(v) << (8 * k)};
      s.address_hash_[k][v] = toeplitz_hash(s.outside_key_, outside_input_portless(p.outside_layout, a).span());
      s.inside_hash_[k][v] = toeplitz_hash(s.inside_key_, inside_input(a).span());
    }
  }
  for (unsigned v = 0; v < 256; ++v) {
    s.port_hash_[0][v] = toeplitz_hash(s.outside_key_,
                                       outside_input(p.outside_layout, be32{0}, static_cast<std::uint16_t>(v << 8)).span());
    s.port_hash_[1][v] = toeplitz_hash(s.outside_key_,
                                       outside_input(p.outside_layout, be32{0}, static_cast<std::uint16_t>(v)).span());
  }
  if (error) *error = SteeringError::none;
  return s;
}

std::size_t RssSteering::owned_residues(be32 public_addr, unsigned worker, std::span<std::uint16_t> out) const {
  const std::uint32_t h = address_hash(public_addr);
  std::size_t n = 0;
  // RETA index i (mod stride) belongs to `worker` iff i % W == worker.
  for (std::uint32_t i = worker; i <= stride_mask_; i += workers_) {
    if (n == out.size()) break;
    out[n++] = residue_of_index_[(h ^ i) & stride_mask_];
  }
  std::sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
  return n;
}

std::uint16_t RssSteering::residue_fallback(be32 public_addr, unsigned worker) const {
  const std::uint32_t h = address_hash(public_addr);
  std::uint16_t best = 0xffff;
  for (std::uint32_t i = worker; i <= stride_mask_; i += workers_)
    best = std::min(best, residue_of_index_[(h ^ i) & stride_mask_]);
  return best;
}

}  // namespace passgate::steering
