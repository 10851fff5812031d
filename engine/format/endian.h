// Little-endian encoding, the byte order of everything corobtree writes to a
// file, and Field<T, Offset>: one named, typed field of an on-disk structure.
// Each structure's layout is a struct of Fields, defined once (page header,
// meta page: engine/format; log header and records: engine/log); code reads
// and writes a structure only through its layout, never at a literal offset.
//
//   struct MetaLayout { using Magic = Field<std::uint64_t, 8>; ... };
//   if (MetaLayout::Magic::get(page) != kMagic) ...
//
// Thread-safety: plain functions over caller-owned bytes.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace corobtree {

namespace le {

template <std::unsigned_integral T>
constexpr T byteswap(T v) noexcept {
  if constexpr (sizeof(T) == 1) {
    return v;
  } else if constexpr (sizeof(T) == 2) {
    return static_cast<T>(__builtin_bswap16(v));
  } else if constexpr (sizeof(T) == 4) {
    return static_cast<T>(__builtin_bswap32(v));
  } else {
    static_assert(sizeof(T) == 8);
    return static_cast<T>(__builtin_bswap64(v));
  }
}

// Reads the little-endian T at p + off (no alignment needed).
template <std::unsigned_integral T>
inline T load(const std::byte* p, std::size_t off) noexcept {
  T v;
  std::memcpy(&v, p + off, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = byteswap(v);
  return v;
}

// Writes v as a little-endian T at p + off.
template <std::unsigned_integral T>
inline void store(std::byte* p, std::size_t off, T v) noexcept {
  if constexpr (std::endian::native == std::endian::big) v = byteswap(v);
  std::memcpy(p + off, &v, sizeof v);
}

}  // namespace le

// One field of an on-disk structure: a little-endian T at byte `Offset` from
// the structure's start.
template <std::unsigned_integral T, std::uint32_t Offset>
struct Field {
  using type = T;
  static constexpr std::uint32_t offset = Offset;
  static constexpr std::uint32_t end = Offset + sizeof(T);
  static T get(const std::byte* base) noexcept { return le::load<T>(base, Offset); }
  static void set(std::byte* base, T v) noexcept { le::store<T>(base, Offset, v); }
};

}  // namespace corobtree
