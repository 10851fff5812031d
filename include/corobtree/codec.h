// Codecs between typed keys and values and the byte strings a Database stores.
//
// The database orders keys by memcmp (bytes compared as unsigned), so a key
// codec is ORDER-PRESERVING: for any a, b of type T,
//   a < b  <=>  KeyCodec<T>::encode(a) < KeyCodec<T>::encode(b)   (as byte strings)
// and decode(encode(x)) == x. Range scans over encoded keys are then range
// scans over the typed keys, in the types' own order.
//   * Unsigned integers: fixed width, big-endian (the most significant byte
//     first, so that byte order is numeric order).
//   * Signed integers: the same after flipping the sign bit, which maps
//     [min, max] monotonically onto [0, umax] (min -> 00.., -1 -> 7F FF..,
//     0 -> 80 00..).
//   * std::string on its own: the raw bytes (memcmp order is already the
//     order of std::string's operator<, which compares chars as unsigned).
//   * std::tuple<Ts...> (composite keys, compared lexicographically like
//     std::tuple's operator<): the elements' encodings concatenated. Integers
//     are fixed width, hence self-delimiting. A string inside a tuple must also
//     be self-delimiting and keep "a prefix sorts first": each 0x00 byte is
//     written as 00 FF and the string ends with 00 01. The terminator sorts
//     below every continuation (00 01 < 00 FF, and 00 < any non-zero byte),
//     so ("ab", 9) < ("ab\0", 0) < ("abc", 0). Tuples may nest.
// Every decode checks its input and throws Error(kCorruption) on malformed
// bytes (wrong length, bad escape, missing terminator, trailing bytes).
//
// Value codecs only need to round-trip: std::string is raw; integers are fixed
// width LITTLE-endian (host independent); bool is one byte 0/1; any other
// trivially copyable type is its object representation (memcpy), which is
// host specific (endianness, padding, layout): fine for a database that stays
// on one kind of machine and one build of the struct, not a portable format.
//
// Thread-safety: stateless; all functions are reentrant.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <corobtree/error.h>

namespace corobtree {

// Specialised below for integers, std::string and std::tuple of those.
template <typename T>
struct KeyCodec;

// Specialised for std::string, integers and bool; the primary template covers
// other trivially copyable types.
template <typename T>
struct ValueCodec;

namespace detail {

// Integer types usable as keys and values (bool is not a number here).
template <typename T>
concept CodecInteger = std::integral<T> && !std::same_as<std::remove_cv_t<T>, bool>;

[[noreturn]] inline void throw_codec_corruption(std::string_view codec, std::string_view what) {
  throw Error(ErrorCode::kCorruption, std::string(codec) + ": " + std::string(what));
}

[[noreturn]] inline void throw_size_mismatch(std::string_view codec, std::size_t got,
                                             std::size_t want) {
  throw_codec_corruption(codec,
                         "expected " + std::to_string(want) + " bytes, got " + std::to_string(got));
}

// Inline, so that the compiler sees the length check before the reads it guards.
inline void check_size(std::string_view codec, std::string_view bytes, std::size_t want) {
  if (bytes.size() != want) [[unlikely]]
    throw_size_mismatch(codec, bytes.size(), want);
}

// Appends `value` as sizeof(T) bytes, most significant first; signed values
// have the sign bit flipped.
template <CodecInteger T>
void append_ordered_int(std::string& out, T value) {
  using U = std::make_unsigned_t<T>;
  constexpr std::size_t kBytes = sizeof(T);
  std::uint64_t u = static_cast<U>(value);
  if constexpr (std::is_signed_v<T>) u ^= std::uint64_t{1} << (8 * kBytes - 1);
  for (std::size_t i = 0; i < kBytes; ++i) {
    out.push_back(static_cast<char>((u >> (8 * (kBytes - 1 - i))) & 0xff));
  }
}

// REQUIRES: bytes.size() == sizeof(T).
template <CodecInteger T>
T parse_ordered_int(std::string_view bytes) {
  using U = std::make_unsigned_t<T>;
  constexpr std::size_t kBytes = sizeof(T);
  std::uint64_t u = 0;
  for (std::size_t i = 0; i < kBytes; ++i) {
    u = (u << 8) | static_cast<unsigned char>(bytes[i]);
  }
  if constexpr (std::is_signed_v<T>) u ^= std::uint64_t{1} << (8 * kBytes - 1);
  return static_cast<T>(static_cast<U>(u));  // modular conversion (C++20)
}

// Self-delimiting, order-preserving encodings of tuple elements: append()
// writes one element, read() consumes one from the front of `in`.
template <typename T>
struct TupleElementCodec;

template <CodecInteger T>
struct TupleElementCodec<T> {
  static void append(std::string& out, const T& value) { append_ordered_int(out, value); }
  static T read(std::string_view& in) {
    if (in.size() < sizeof(T)) {
      throw_codec_corruption("KeyCodec<tuple>",
                             "truncated integer element: " + std::to_string(in.size()) + " of " +
                                 std::to_string(sizeof(T)) + " bytes");
    }
    T value = parse_ordered_int<T>(in.substr(0, sizeof(T)));
    in.remove_prefix(sizeof(T));
    return value;
  }
};

template <>
struct TupleElementCodec<std::string> {
  static constexpr char kEscape = '\x00';
  static constexpr char kEscapedZero = '\xff';
  static constexpr char kTerminator = '\x01';

  static void append(std::string& out, const std::string& value) {
    for (char c : value) {
      out.push_back(c);
      if (c == kEscape) out.push_back(kEscapedZero);
    }
    out.push_back(kEscape);
    out.push_back(kTerminator);
  }
  static std::string read(std::string_view& in) {
    std::string value;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i] != kEscape) {
        value.push_back(in[i]);
        continue;
      }
      if (i + 1 == in.size()) break;  // a lone 00 at the end: truncated
      if (in[i + 1] == kTerminator) {
        in.remove_prefix(i + 2);
        return value;
      }
      if (in[i + 1] != kEscapedZero) {
        throw_codec_corruption("KeyCodec<tuple>",
                               "bad escape 00 " +
                                   std::to_string(static_cast<unsigned char>(in[i + 1])) +
                                   " in string element");
      }
      value.push_back('\0');
      ++i;
    }
    throw_codec_corruption("KeyCodec<tuple>", "string element without terminator");
  }
};

template <typename... Ts>
struct TupleElementCodec<std::tuple<Ts...>> {
  static void append(std::string& out, const std::tuple<Ts...>& value) {
    std::apply([&](const Ts&... elements) { (TupleElementCodec<Ts>::append(out, elements), ...); },
               value);
  }
  static std::tuple<Ts...> read(std::string_view& in) {
    // Braced initialisation evaluates its elements left to right.
    return std::tuple<Ts...>{TupleElementCodec<Ts>::read(in)...};
  }
};

}  // namespace detail

// ---------------------------------------------------------------------------
// Key codecs

template <detail::CodecInteger T>
struct KeyCodec<T> {
  static constexpr std::size_t kEncodedSize = sizeof(T);
  static std::string encode(const T& value) {
    std::string out;
    out.reserve(sizeof(T));
    detail::append_ordered_int(out, value);
    return out;
  }
  static T decode(std::string_view bytes) {
    detail::check_size("KeyCodec<integer>", bytes, sizeof(T));
    return detail::parse_ordered_int<T>(bytes);
  }
};

template <>
struct KeyCodec<std::string> {
  static std::string encode(const std::string& value) { return value; }
  static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

template <typename... Ts>
struct KeyCodec<std::tuple<Ts...>> {
  static std::string encode(const std::tuple<Ts...>& value) {
    std::string out;
    detail::TupleElementCodec<std::tuple<Ts...>>::append(out, value);
    return out;
  }
  static std::tuple<Ts...> decode(std::string_view bytes) {
    std::string_view rest = bytes;
    std::tuple<Ts...> value = detail::TupleElementCodec<std::tuple<Ts...>>::read(rest);
    if (!rest.empty()) {
      detail::throw_codec_corruption("KeyCodec<tuple>",
                                     std::to_string(rest.size()) + " trailing bytes");
    }
    return value;
  }
};

// ---------------------------------------------------------------------------
// Value codecs

template <typename T>
struct ValueCodec {
  static_assert(std::is_trivially_copyable_v<T>,
                "ValueCodec<T>: T must be trivially copyable (or specialise ValueCodec)");
  static_assert(!std::is_pointer_v<T>, "ValueCodec<T>: storing a pointer is meaningless");

  static std::string encode(const T& value) {
    std::string out(sizeof(T), '\0');
    std::memcpy(out.data(), &value, sizeof(T));
    return out;
  }
  static T decode(std::string_view bytes) {
    detail::check_size("ValueCodec<trivially copyable>", bytes, sizeof(T));
    std::array<char, sizeof(T)> raw;
    std::memcpy(raw.data(), bytes.data(), sizeof(T));
    return std::bit_cast<T>(raw);  // no default constructor needed
  }
};

template <>
struct ValueCodec<std::string> {
  static std::string encode(const std::string& value) { return value; }
  static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

template <detail::CodecInteger T>
struct ValueCodec<T> {
  static std::string encode(const T& value) {
    using U = std::make_unsigned_t<T>;
    const std::uint64_t u = static_cast<U>(value);
    std::string out(sizeof(T), '\0');
    for (std::size_t i = 0; i < sizeof(T); ++i) out[i] = static_cast<char>((u >> (8 * i)) & 0xff);
    return out;
  }
  static T decode(std::string_view bytes) {
    using U = std::make_unsigned_t<T>;
    detail::check_size("ValueCodec<integer>", bytes, sizeof(T));
    std::uint64_t u = 0;
    for (std::size_t i = sizeof(T); i-- > 0;) u = (u << 8) | static_cast<unsigned char>(bytes[i]);
    return static_cast<T>(static_cast<U>(u));
  }
};

template <>
struct ValueCodec<bool> {
  static std::string encode(const bool& value) { return std::string(1, value ? '\x01' : '\x00'); }
  static bool decode(std::string_view bytes) {
    detail::check_size("ValueCodec<bool>", bytes, 1);
    if (bytes[0] != '\x00' && bytes[0] != '\x01') {
      detail::throw_codec_corruption("ValueCodec<bool>", "byte is neither 0 nor 1");
    }
    return bytes[0] == '\x01';
  }
};

}  // namespace corobtree
