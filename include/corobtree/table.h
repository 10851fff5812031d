// Table<K, V> and BlockingTable<K, V>: typed views of a Database. Keys and
// values go through KeyCodec<K> / ValueCodec<V> (engine/codec.h), whose key
// encodings are order preserving, so scans return typed keys in K's order.
//
//   corobtree::BlockingTable<std::int64_t, std::string> t(db);
//   t.put(42, "answer");
//   std::optional<std::string> v = t.get(42);
//   auto rows = t.scan(-10, 100, 50);          // keys in [-10, 100), at most 50
//
//   corobtree::Table<std::int64_t, std::string> at(*async_db);   // in a coroutine
//   co_await at.put(key, value);
//
// A table may own a key prefix (default: none, the whole database): every key
// is stored as prefix + encode(key) and unbounded scans stay inside the
// prefix, so several tables can share one database. REQUIRES: no table's
// prefix is a prefix of another's (e.g. give them equal lengths), and a table
// without a prefix is the only table in its database. A key inside a table's
// range that does not decode as K is reported as Error(kCorruption).
//
// Table methods encode their arguments when called (before the returned task
// starts), so the arguments need not outlive the task; the Table and its
// Database must. Errors are those of Database plus kCorruption from decoding.
//
// Thread-safety: as the underlying Database; a Table holds no mutable state.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/codec.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/task.h>

namespace corobtree {

template <typename C, typename T>
concept CodecFor = requires(const T& value, std::string_view bytes) {
  { C::encode(value) } -> std::same_as<std::string>;
  { C::decode(bytes) } -> std::same_as<T>;
};

namespace detail {

// The smallest byte string greater than every string starting with `prefix`;
// none if there is no such string (empty prefix, or all bytes 0xFF).
inline std::optional<std::string> prefix_successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

// The byte layout of one table: prefix + codec encodings. Shared by Table and
// BlockingTable.
template <typename K, typename V, typename KC, typename VC>
class TableFormat {
 public:
  using Rows = std::vector<std::pair<K, V>>;
  using RawRows = std::vector<std::pair<std::string, std::string>>;

  explicit TableFormat(std::string prefix) : prefix_(std::move(prefix)) {}

  const std::string& prefix() const noexcept { return prefix_; }

  std::string key(const K& key) const {
    std::string out = prefix_;
    out += KC::encode(key);
    return out;
  }
  static std::string value(const V& value) { return VC::encode(value); }

  K decode_key(std::string_view bytes) const {
    if (bytes.substr(0, prefix_.size()) != prefix_) {
      throw Error(ErrorCode::kCorruption, "Table: scanned key lies outside the table's prefix");
    }
    return KC::decode(bytes.substr(prefix_.size()));
  }
  static V decode_value(std::string_view bytes) { return VC::decode(bytes); }

  // [lower, upper) in K's order, clipped to the prefix when a bound is open.
  ScanOptions scan_options(const std::optional<K>& lower, const std::optional<K>& upper,
                           bool reverse) const {
    ScanOptions options;
    if (lower) {
      options.lower = key(*lower);
    } else if (!prefix_.empty()) {
      options.lower = prefix_;
    }
    if (upper) {
      options.upper = key(*upper);
    } else {
      options.upper = prefix_successor(prefix_);
    }
    options.reverse = reverse;
    return options;
  }

  Rows decode_rows(const RawRows& raw) const {
    Rows rows;
    rows.reserve(raw.size());
    for (const auto& [k, v] : raw) rows.emplace_back(decode_key(k), decode_value(v));
    return rows;
  }

 private:
  std::string prefix_;
};

}  // namespace detail

// The async typed table. See the file comment.
template <typename K, typename V, typename KC = KeyCodec<K>, typename VC = ValueCodec<V>>
requires CodecFor<KC, K> && CodecFor<VC, V>
class Table {
 public:
  using Rows = std::vector<std::pair<K, V>>;

  explicit Table(Database& db, std::string prefix = {}) : db_(&db), format_(std::move(prefix)) {}

  Task<void> put(const K& key, const V& value) {
    std::string k = format_.key(key);
    std::string v = format_.value(value);
    return put_encoded(*db_, std::move(k), std::move(v));
  }

  // std::nullopt when the key is absent.
  Task<std::optional<V>> get(const K& key) {
    std::string k = format_.key(key);
    return get_encoded(*db_, std::move(k));
  }

  // Returns whether the key existed.
  Task<bool> erase(const K& key) {
    std::string k = format_.key(key);
    return erase_encoded(*db_, std::move(k));
  }

  // Up to `limit` rows with lower <= key < upper (an absent bound is open), in
  // ascending key order, or descending if `reverse`.
  Task<Rows> scan(std::optional<K> lower, std::optional<K> upper, std::size_t limit = SIZE_MAX,
                  bool reverse = false) {
    ScanOptions options = format_.scan_options(lower, upper, reverse);
    // Database::scan takes the options by value: its frame owns the bounds.
    Task<typename Format::RawRows> raw = db_->scan(std::move(options), limit);
    return decode_scan(format_, std::move(raw));
  }

  Database& database() const noexcept { return *db_; }
  const std::string& prefix() const noexcept { return format_.prefix(); }

 private:
  using Format = detail::TableFormat<K, V, KC, VC>;

  // The encoded strings are parameters, hence live in the coroutine frame for
  // as long as the string_views handed to the Database are in use.
  static Task<void> put_encoded(Database& db, std::string key, std::string value) {
    co_await db.put(key, value);
  }
  static Task<std::optional<V>> get_encoded(Database& db, std::string key) {
    std::optional<std::string> raw = co_await db.get(key);
    std::optional<V> value;
    if (raw) value.emplace(Format::decode_value(*raw));
    co_return value;
  }
  static Task<bool> erase_encoded(Database& db, std::string key) {
    const bool existed = co_await db.erase(key);
    co_return existed;
  }
  static Task<Rows> decode_scan(const Format& format, Task<typename Format::RawRows> raw_scan) {
    typename Format::RawRows raw = co_await std::move(raw_scan);
    Rows rows = format.decode_rows(raw);
    co_return rows;
  }

  Database* db_;
  Format format_;
};

// The blocking typed table, over a BlockingDatabase: the same methods, run to
// completion on the calling thread. Not for use inside a coroutine.
template <typename K, typename V, typename KC = KeyCodec<K>, typename VC = ValueCodec<V>>
requires CodecFor<KC, K> && CodecFor<VC, V>
class BlockingTable {
 public:
  using Rows = std::vector<std::pair<K, V>>;

  explicit BlockingTable(BlockingDatabase& db, std::string prefix = {})
      : db_(&db), format_(std::move(prefix)) {}

  void put(const K& key, const V& value) {
    const std::string k = format_.key(key);
    const std::string v = format_.value(value);
    db_->put(k, v);
  }

  std::optional<V> get(const K& key) {
    const std::string k = format_.key(key);
    std::optional<std::string> raw = db_->get(k);
    if (!raw) return std::nullopt;
    return Format::decode_value(*raw);
  }

  bool erase(const K& key) {
    const std::string k = format_.key(key);
    return db_->erase(k);
  }

  Rows scan(std::optional<K> lower, std::optional<K> upper, std::size_t limit = SIZE_MAX,
            bool reverse = false) {
    ScanOptions options = format_.scan_options(lower, upper, reverse);
    const typename Format::RawRows raw = db_->scan(std::move(options), limit);
    return format_.decode_rows(raw);
  }

  BlockingDatabase& database() const noexcept { return *db_; }
  const std::string& prefix() const noexcept { return format_.prefix(); }

 private:
  using Format = detail::TableFormat<K, V, KC, VC>;

  BlockingDatabase* db_;
  Format format_;
};

}  // namespace corobtree
