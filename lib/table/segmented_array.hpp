// SegmentedArray: an array of records in fixed-size segments, indexed like a
// vector, that grows without moving what it holds. The engine keeps its
// public addresses and port blocks in it so that a reload adding a /16 pool
// (8M port blocks) builds the new segments on the control core and the worker
// only links them in: Growth is prepared away from the worker (it reads the
// array's size and directory, which change only when a growth is adopted)
// and adopt() then costs one write per new segment pointer plus the records
// that land in the array's last, partly filled segment (fewer than one
// segment): no allocation, nothing existing copied or moved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

namespace passgate::table {

template <typename T, unsigned Bits>
class SegmentedArray {
 public:
  static constexpr std::size_t segment_size = std::size_t{1} << Bits;
  static constexpr std::size_t mask = segment_size - 1;

  SegmentedArray() = default;
  SegmentedArray(const SegmentedArray&) = delete;
  SegmentedArray& operator=(const SegmentedArray&) = delete;
  ~SegmentedArray() {
    for (T* s : dir_) delete[] s;
  }

  T& operator[](std::size_t i) { return dir_[i >> Bits][i & mask]; }
  const T& operator[](std::size_t i) const { return dir_[i >> Bits][i & mask]; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t segments() const { return dir_.size(); }

  // Allocating append, for construction (never on a running worker).
  void push_back(const T& v) {
    if ((size_ >> Bits) == dir_.size()) dir_.push_back(new T[segment_size]());
    (*this)[size_++] = v;
  }

  template <typename A, typename V>
  class Iter {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = V*;
    using reference = V&;
    Iter() = default;
    Iter(A* a, std::size_t i) : a_(a), i_(i) {}
    reference operator*() const { return (*a_)[i_]; }
    pointer operator->() const { return &(*a_)[i_]; }
    Iter& operator++() {
      ++i_;
      return *this;
    }
    Iter operator++(int) {
      Iter t = *this;
      ++i_;
      return t;
    }
    friend bool operator==(const Iter& x, const Iter& y) { return x.i_ == y.i_; }

   private:
    A* a_ = nullptr;
    std::size_t i_ = 0;
  };
  using iterator = Iter<SegmentedArray, T>;
  using const_iterator = Iter<const SegmentedArray, const T>;
  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

  // Records to append, built away from the array's owner. Records that fall
  // in the array's last segment wait in `tail_` (that segment is live: only
  // the owner may write it); the others go straight into new segments.
  class Growth {
   public:
    Growth() = default;
    explicit Growth(const SegmentedArray& a) : base_(a.size_), base_segments_(a.dir_.size()), capacity_(a.dir_.capacity()) {}
    Growth(Growth&& o) noexcept { *this = std::move(o); }
    Growth& operator=(Growth&& o) noexcept {
      release();
      base_ = o.base_;
      base_segments_ = o.base_segments_;
      capacity_ = o.capacity_;
      count_ = o.count_;
      tail_ = std::move(o.tail_);
      segments_ = std::move(o.segments_);
      directory_ = std::move(o.directory_);
      o.segments_.clear();
      o.count_ = 0;
      return *this;
    }
    Growth(const Growth&) = delete;
    Growth& operator=(const Growth&) = delete;
    ~Growth() { release(); }

    // Index the next record will have in the array.
    [[nodiscard]] std::size_t next_index() const { return base_ + count_; }
    [[nodiscard]] std::size_t size() const { return count_; }
    // What adopt() will write: the records of the last segment and one
    // pointer per new segment.
    [[nodiscard]] std::size_t adopt_work() const { return tail_.size() + segments_.size(); }
    T& push_back(const T& v) {
      const std::size_t i = base_ + count_++;
      if ((i >> Bits) < base_segments_) {
        tail_.push_back(v);
        return tail_.back();
      }
      const std::size_t s = (i >> Bits) - base_segments_;
      if (s == segments_.size()) segments_.push_back(new T[segment_size]());
      T& slot = segments_[s][i & mask];
      slot = v;
      return slot;
    }
    // Called once every record is in: gives the adopting side a directory
    // with room when the array's own is full.
    void finish(const SegmentedArray& a) {
      if (base_segments_ + segments_.size() <= capacity_) return;
      directory_.reserve(2 * (base_segments_ + segments_.size()));
      directory_.assign(a.dir_.begin(), a.dir_.end());
    }

   private:
    friend SegmentedArray;
    void release() {
      for (T* s : segments_) delete[] s;
      segments_.clear();
    }
    std::size_t base_ = 0, base_segments_ = 0, capacity_ = 0, count_ = 0;
    std::vector<T> tail_;
    std::vector<T*> segments_;   // owned until adopted
    std::vector<T*> directory_;  // a replacement directory, when needed; never owns
  };

  // Whether `g` was prepared against this array as it is now.
  [[nodiscard]] bool fits(const Growth& g) const {
    return g.base_ == size_ && g.base_segments_ == dir_.size() &&
           (g.directory_.empty() ? g.base_segments_ + g.segments_.size() <= dir_.capacity()
                                 : g.directory_.capacity() >= g.base_segments_ + g.segments_.size());
  }
  // O(new segments + records in the last segment); no allocation. After it
  // `g` holds only the old directory (if it was replaced), for its owner to free.
  void adopt(Growth& g) {
    for (std::size_t k = 0; k < g.tail_.size(); ++k) (*this)[size_ + k] = g.tail_[k];
    if (!g.directory_.empty()) dir_.swap(g.directory_);
    for (T* s : g.segments_) dir_.push_back(s);
    g.segments_.clear();
    size_ += g.count_;
    g.count_ = 0;
  }

 private:
  std::vector<T*> dir_;
  std::size_t size_ = 0;
};

}  // namespace passgate::table
