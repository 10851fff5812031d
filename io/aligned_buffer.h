// AlignedBuffer: an owned, zero-initialised byte buffer whose address is
// aligned for O_DIRECT (kDirectIoAlignment). Move-only. A buffer of
// kMapAtLeast bytes or more is an anonymous mapping: the kernel zeroes its
// pages when they are first touched, so a large buffer (the buffer pool's
// frames) costs memory only for the part in use.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace corobtree {

inline constexpr std::size_t kDirectIoAlignment = 4096;

class AlignedBuffer {
 public:
  static constexpr std::size_t kMapAtLeast = std::size_t{1} << 20;

  AlignedBuffer() noexcept = default;
  explicit AlignedBuffer(std::size_t size, std::size_t alignment = kDirectIoAlignment)
      : size_(size) {
    if (size == 0) return;
    const std::size_t rounded = (size + alignment - 1) / alignment * alignment;
    if (rounded >= kMapAtLeast && alignment <= kDirectIoAlignment) {
      void* p =
          ::mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      data_ = static_cast<std::byte*>(p);
      mapped_ = rounded;
      return;
    }
    data_ = static_cast<std::byte*>(std::aligned_alloc(alignment, rounded));
    if (!data_) throw std::bad_alloc();
    std::memset(data_, 0, rounded);
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        mapped_(std::exchange(o.mapped_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      mapped_ = std::exchange(o.mapped_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { release(); }

  // Asks the kernel to back a mapped buffer with transparent huge pages
  // (MADV_HUGEPAGE; a hint, ignored where unsupported): a large buffer read at
  // random, as the buffer pool's frames are, then misses the TLB far less.
  void advise_huge_pages() noexcept {
    if (mapped_ != 0) (void)::madvise(data_, mapped_, MADV_HUGEPAGE);
  }

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<std::byte> span() noexcept { return {data_, size_}; }
  std::span<const std::byte> span() const noexcept { return {data_, size_}; }

 private:
  void release() noexcept {
    if (mapped_ != 0) {
      ::munmap(data_, mapped_);
    } else {
      std::free(data_);
    }
  }

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;  // the mapping's length; 0: from aligned_alloc
};

inline bool is_direct_io_aligned(const void* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p) % kDirectIoAlignment == 0;
}

}  // namespace corobtree
