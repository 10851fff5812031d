// The data_file and wal targets, the base database and their restamping
// (tests/fuzz/fuzz_targets.h).
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/error.h>

#include "engine/format/crc32c.h"
#include "engine/format/meta.h"
#include "engine/format/page_format.h"
#include "engine/log/log_format.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/fuzz_targets.h"

namespace corobtree::fuzz {
namespace {

// PageImageStore::kRecordType (engine/log/page_image_store.h; the fuzz
// targets see only the engine's format and public headers).
constexpr std::uint16_t kImageRecordType = 1;

std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Scan results must come in strict key order (a scan that cannot keep it
// must report the corruption instead).
void check_order(const std::vector<std::pair<std::string, std::string>>& rows, bool reverse) {
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const bool ordered =
        reverse ? rows[i - 1].first > rows[i].first : rows[i - 1].first < rows[i].first;
    if (!ordered) {
      fail(std::string(reverse ? "reverse " : "") + "scan returned keys out of order at row " +
           std::to_string(i));
    }
  }
}

// Opens the database at `path` (its log beside it, if any) and runs every
// operation once. Each may work or report corruption.
void exercise(const std::string& path) {
  bool corrupt = false;
  std::optional<BlockingDatabase> db;
  // A meta page of another format version is kNotSupported, not corrupt.
  corrupt |= expect_ok_or_corrupt(
      "open", corrupt, [&] { db.emplace(BlockingDatabase::open(path, fuzz_options())); },
      ErrorCode::kNotSupported);
  if (!db) return;
  // The model: what a sound file holds, then every change made to it.
  std::map<std::string, std::string> model;
  std::vector<std::string> keys;
  corrupt |= expect_ok_or_corrupt("scan", corrupt, [&] {
    const auto rows = db->scan();
    check_order(rows, false);
    for (const auto& row : rows) {
      keys.push_back(row.first);
      model.insert(row);
    }
  });
  corrupt |= expect_ok_or_corrupt("reverse scan", corrupt, [&] {
    ScanOptions o;
    o.reverse = true;
    check_order(db->scan(o, 256), true);
  });
  for (int i = 0; i < 4; ++i) keys.push_back(fuzz_key(i * 7));
  corrupt |= expect_ok_or_corrupt("get", corrupt, [&] {
    for (std::size_t i = 0; i < keys.size() && i < 12; ++i) (void)db->get(keys[i]);
  });
  bool sound = false;
  corrupt |= expect_ok_or_corrupt("validate", corrupt, [&] { sound = db->validate().ok(); });
  sound = sound && !corrupt;
  // Enough puts to split leaves, enough erases to merge them again.
  corrupt |= expect_ok_or_corrupt("put", corrupt, [&] {
    for (int i = 0; i < 40; ++i) {
      db->put(fuzz_key(1000 + i * 13), fuzz_value(i, 30));
      model[fuzz_key(1000 + i * 13)] = fuzz_value(i, 30);
    }
    db->put(keys.front(), fuzz_value(5, 700));  // an overflow value
    model[keys.front()] = fuzz_value(5, 700);
    db->put("big", fuzz_value(9, 1500));
    model["big"] = fuzz_value(9, 1500);
  });
  corrupt |= expect_ok_or_corrupt("erase", corrupt, [&] {
    for (std::size_t i = 0; i < keys.size() && i < 64; i += 2) {
      (void)db->erase(keys[i]);
      model.erase(keys[i]);
    }
    for (int i = 0; i < 40; i += 2) {
      (void)db->erase(fuzz_key(1000 + i * 13));
      model.erase(fuzz_key(1000 + i * 13));
    }
    (void)db->erase("big");
    model.erase("big");
  });
  corrupt |= expect_ok_or_corrupt("bounded scan", corrupt, [&] {
    ScanOptions o;
    o.lower = fuzz_key(3);
    o.upper = fuzz_key(30);
    check_order(db->scan(o, 64), false);
  });
  corrupt |= expect_ok_or_corrupt("checkpoint", corrupt, [&] { db->checkpoint(); });
  corrupt |= expect_ok_or_corrupt("close", corrupt, [&] { db->close(); });
  db.reset();
  // What the engine wrote back must open again (or report the corruption).
  // A file that validated and never reported corruption must still validate
  // and hold exactly the model: a clean file stays clean.
  sound = sound && !corrupt;
  const bool reopen_corrupt = expect_ok_or_corrupt(
      "reopen", corrupt,
      [&] {
        auto again = BlockingDatabase::open(path, fuzz_options());
        const auto rows = again.scan();
        check_order(rows, false);
        const ValidationReport report = again.validate();
        if (sound && !report.ok()) {
          fail("a file that validated no longer does after puts and erases: " + report.summary());
        }
        const std::vector<std::pair<std::string, std::string>> want(model.begin(), model.end());
        if (sound && rows != want) {
          fail("a file that validated lost or changed keys: " + std::to_string(rows.size()) +
               " rows, the model has " + std::to_string(model.size()));
        }
        again.close();
      },
      ErrorCode::kNotSupported);
  if (sound && reopen_corrupt) fail("a file that validated is corrupt after puts and erases");
}

}  // namespace

std::string fuzz_key(int i) {
  char k[16];
  std::snprintf(k, sizeof k, "key%05d", i);
  return k;
}

std::string fuzz_value(int i, std::size_t size) {
  std::string v(size, '\0');
  for (std::size_t j = 0; j < size; ++j) v[j] = static_cast<char>('a' + (i + j) % 26);
  return v;
}

const std::string& base_database() {
  static const std::string bytes = [] {
    clear_scratch();
    const std::string path = scratch_dir() + "/base";
    Options o = fuzz_options();
    o.page_size = kFuzzPageSize;
    {
      auto db = BlockingDatabase::open(path, o);
      for (int i = 0; i < 40; ++i) db.put(fuzz_key(i), fuzz_value(i, 12));
      db.close();
    }
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) fail("cannot read the base database");
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    std::fclose(f);
    clear_scratch();
    // A fixed database id: the same bytes in every run, and logs that name it.
    for (BlockId id : {BlockId{0}, BlockId{1}}) {
      auto page = std::span<std::byte>(
          reinterpret_cast<std::byte*>(out.data()) + id * kFuzzPageSize, kFuzzPageSize);
      DecodedMeta d = decode_meta(id, page);
      if (d.status != MetaStatus::kValid) fail("the base database has a bad meta page");
      d.meta.database_id = kBaseDatabaseId;
      encode_meta(d.meta, id, page);
    }
    return out;
  }();
  return bytes;
}

int data_file_one_input(const std::uint8_t* data, std::size_t size) {
  clear_scratch();
  exercise(write_scratch("db", as_text(data, size)));
  clear_scratch();
  return 0;
}

int wal_one_input(const std::uint8_t* data, std::size_t size) {
  const std::string& base = base_database();
  clear_scratch();
  const std::string path = write_scratch("db", base);
  write_scratch("db-wal", as_text(data, size));
  exercise(path);
  clear_scratch();
  return 0;
}

// Every page: a tree, overflow or free page's CRC, or a meta page's (the same
// formula). All-zero pages stay zero ("never written").
void data_file_restamp(std::uint8_t* data, std::size_t size) {
  for (std::size_t off = 0; off + kFuzzPageSize <= size; off += kFuzzPageSize) {
    const std::span<std::byte> page(reinterpret_cast<std::byte*>(data + off), kFuzzPageSize);
    bool zero = true;
    for (std::size_t i = PageHeader::Crc::end; i < page.size() && zero; ++i) {
      zero = page[i] == std::byte{0};
    }
    if (!zero) page::stamp_checksum(off / kFuzzPageSize, page);
  }
}

// The log header (block 0): its CRC, with the base database's id and page
// size so that open does not discard the log. Then the record chain from
// block 1, record after record, while the lengths fit the file; a page
// image record's page gets its own CRC first.
void wal_restamp(std::uint8_t* data, std::size_t size) {
  using H = RecordHeader;
  if (size < 2 * kFuzzPageSize) return;
  auto* h = reinterpret_cast<std::byte*>(data);
  LogHeader::DatabaseId::set(h, kBaseDatabaseId);
  LogHeader::PageSize::set(h, kFuzzPageSize);
  LogHeader::Crc::set(h, crc32c(h + LogHeader::Crc::end, LogHeader::kSize - LogHeader::Crc::end));
  std::byte seed[ChainSeed::kSize];
  ChainSeed::Salt::set(seed, LogHeader::Salt::get(h));
  ChainSeed::DatabaseId::set(seed, kBaseDatabaseId);
  std::uint32_t chain = crc32c(seed, sizeof seed);
  const std::uint64_t end = size / kFuzzPageSize * kFuzzPageSize;
  for (std::uint64_t off = kFuzzPageSize; off + H::kSize <= end;) {
    std::byte* rec = h + off;
    const std::uint64_t len = H::Length::get(rec);
    if (off + H::kSize + len > end) break;
    if (H::Type::get(rec) == kImageRecordType && len == kFuzzPageSize) {
      page::stamp_checksum(H::Page::get(rec), std::span<std::byte>(rec + H::kSize, len));
    }
    chain = crc32c_extend(chain, rec + H::Crc::end, H::kSize - H::Crc::end + len);
    H::Crc::set(rec, chain);
    off += H::kSize + len;
  }
}

}  // namespace corobtree::fuzz
