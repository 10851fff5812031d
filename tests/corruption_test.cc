// Damaged and foreign files: the engine must never crash or return wrong data,
// and must report each case with a typed corobtree::Error:
//  (a) a flipped byte in a data page: gets and scans that touch the page throw
//      kCorruption naming it, everything else still reads correctly, and
//      validate() reports the page (free pages only show up there);
//  (b) truncated files, (c) garbage, (d) empty files, (e) both meta pages
//      damaged: open throws kCorruption; one damaged meta page: the other one
//      opens the database intact;
//  (f) another format version: kNotSupported or kCorruption, saying "version";
//  (g) a page size other than the file's: kInvalidArgument;
//  (h) a second process opening a held file: kLocked;
//  (i) an oversize key: kInvalidArgument, and nothing changes.
// Every case runs on both backends, buffered and O_DIRECT. Prints its seed.
#define BOOST_TEST_MODULE corruption
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/error.h>
#include "engine/format/page_format.h"
#include "tests/support/backends.h"
#include "tests/support/db_matrix.h"
#include "tests/support/file_bytes.h"
#include "tests/support/random.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::BlockingDatabase;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::PageType;
using corobtree::ScanOptions;
using corobtree::test::BackendConfig;
using corobtree::test::DbConfig;

namespace {

using corobtree::test::read_file_bytes;
using corobtree::test::write_file_bytes;

using Model = std::map<std::string, std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;
constexpr std::uint32_t kPage = corobtree::kDefaultPageSize;

corobtree::Options options_for(const BackendConfig& b, std::uint32_t page_size = 0) {
  corobtree::Options o;
  o.backend = b.backend;
  o.direct_io = b.direct_io;
  o.pool_pages = 16;
  o.page_size = page_size;
  o.durability = corobtree::Durability::kRelaxed;  // damage is done to closed files
  return o;
}

void write_at(const std::string& path, std::uint64_t offset, const void* data, std::size_t n) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  BOOST_REQUIRE(fd >= 0);
  const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
  ::close(fd);
  BOOST_REQUIRE_EQUAL(w, static_cast<ssize_t>(n));
}

void flip_byte(const std::string& path, const std::string& original, std::uint64_t offset,
               std::uint8_t mask) {
  const char c = static_cast<char>(static_cast<std::uint8_t>(original[offset]) ^ mask);
  write_at(path, offset, &c, 1);
}

// The error `f` throws; fails the test if it throws nothing. Any exception
// other than corobtree::Error propagates and fails the test too.
template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  BOOST_FAIL("expected a corobtree::Error");
  throw std::logic_error("unreachable");
}

std::string code_name(ErrorCode c) { return std::string(corobtree::error_code_name(c)); }

using corobtree::test::random_bytes;

// A closed database of a few levels with overflow values and a non-empty free
// list, both meta pages describing the same state (checkpoint, then close).
Model build(const std::string& path, const corobtree::Options& options, std::mt19937_64& rng) {
  Model model;
  auto db = BlockingDatabase::open(path, options);
  for (int i = 0; i < 700; ++i) {
    char k[16];
    std::snprintf(k, sizeof k, "key%05d", i);
    const std::string v = rng() % 20 == 0 ? random_bytes(rng, 3000 + rng() % 5000)
                                          : random_bytes(rng, 20 + rng() % 180);
    db.put(k, v);
    model[k] = v;
  }
  for (int i = 0; i < 200; ++i) {
    auto it = model.begin();
    std::advance(it, static_cast<long>(rng() % model.size()));
    BOOST_REQUIRE(db.erase(it->first));
    model.erase(it);
  }
  const auto report = db.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  BOOST_REQUIRE_GE(db.stats().height, 2u);
  BOOST_REQUIRE_GT(db.stats().free_pages, 0u);
  BOOST_REQUIRE_GT(report.overflow_pages, 0u);
  db.checkpoint();
  db.close();
  return model;
}

void require_intact(BlockingDatabase& db, const Model& model, const std::string& when) {
  const auto all = db.scan();
  BOOST_REQUIRE_MESSAGE(all == Pairs(model.begin(), model.end()), when << ": contents differ");
  const auto report = db.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), when << ": " << report.summary());
}

bool names_page(const std::string& message, std::uint64_t page) {
  return message.find("page " + std::to_string(page) + " ") != std::string::npos;
}

}  // namespace

// (a) One flipped byte per run, in pages of every kind, at random offsets.
BOOST_DATA_TEST_CASE(flipped_byte_in_a_data_page, bdata::make(corobtree::test::db_matrix()), cfg) {
  const auto seed = corobtree::test::test_seed("flipped_byte_in_a_data_page " + cfg.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("flip.db");
  const Model model = build(path, cfg.options(), rng);
  const std::string pristine = read_file_bytes(path);
  const std::uint64_t pages = pristine.size() / kPage;
  std::map<PageType, std::vector<std::uint64_t>> by_type;
  for (std::uint64_t id = 2; id < pages; ++id) {
    by_type[corobtree::page::type(reinterpret_cast<const std::byte*>(pristine.data() + id * kPage))]
        .push_back(id);
  }
  for (PageType t : {PageType::kLeaf, PageType::kInner, PageType::kOverflow, PageType::kFree}) {
    BOOST_REQUIRE_MESSAGE(!by_type[t].empty(),
                          "no " << corobtree::page_type_name(t) << " page to damage");
  }
  std::vector<std::uint64_t> victims;
  for (auto& [type, ids] : by_type) {
    for (int i = 0; i < 2; ++i) victims.push_back(ids[rng() % ids.size()]);
  }
  for (int i = 0; i < 4; ++i) victims.push_back(2 + rng() % (pages - 2));

  for (const std::uint64_t page : victims) {
    const PageType type =
        corobtree::page::type(reinterpret_cast<const std::byte*>(pristine.data() + page * kPage));
    const std::uint64_t offset = page * kPage + rng() % kPage;
    const auto mask = static_cast<std::uint8_t>(1 + rng() % 255);
    const std::string when = "byte " + std::to_string(offset) + " of " +
                             std::string(corobtree::page_type_name(type)) + " page " +
                             std::to_string(page) + " (seed " + std::to_string(seed) + ")";
    write_file_bytes(path, pristine);
    flip_byte(path, pristine, offset, mask);
    auto db = BlockingDatabase::open(path, cfg.options());  // the meta pages are intact

    // Gets: the right value, or kCorruption naming the damaged page.
    std::size_t failed_gets = 0;
    for (const auto& [k, v] : model) {
      try {
        const auto got = db.get(k);
        BOOST_REQUIRE_MESSAGE(got && *got == v, when << ": get returned wrong data for " << k);
      } catch (const Error& e) {
        BOOST_REQUIRE_MESSAGE(e.code() == ErrorCode::kCorruption,
                              when << ": get threw " << code_name(e.code()) << ": " << e.what());
        BOOST_REQUIRE_MESSAGE(names_page(e.what(), page) && e.block() == page,
                              when << ": get's error names another page: " << e.what());
        ++failed_gets;
      }
    }
    // A full scan reads every leaf, every overflow page and (descending to
    // each leaf) every inner node.
    std::optional<Error> scan_error;
    try {
      const auto all = db.scan();
      BOOST_REQUIRE_MESSAGE(all == Pairs(model.begin(), model.end()),
                            when << ": scan returned wrong data");
    } catch (const Error& e) {
      scan_error = e;
    }
    const auto report = db.validate();
    bool reported = false;
    for (const auto& p : report.problems) reported = reported || names_page(p, page);
    BOOST_TEST_MESSAGE(
        when << ": " << failed_gets << " gets failed, scan "
             << (scan_error ? scan_error->what() : std::string("ok")) << "; validate: "
             << (report.problems.empty() ? std::string("ok") : report.problems.front()));
    BOOST_REQUIRE_MESSAGE(!report.ok() && reported,
                          when << ": validate did not report the page: " << report.summary());
    if (type == PageType::kFree) {
      BOOST_REQUIRE_MESSAGE(!scan_error, when << ": a damaged free page broke a scan");
      BOOST_REQUIRE_EQUAL(failed_gets, 0u);
    } else {
      BOOST_REQUIRE_MESSAGE(scan_error, when << ": the scan did not notice the damage");
      BOOST_REQUIRE_MESSAGE(
          scan_error->code() == ErrorCode::kCorruption && names_page(scan_error->what(), page),
          when << ": scan threw " << code_name(scan_error->code()) << ": " << scan_error->what());
      BOOST_REQUIRE_MESSAGE(failed_gets > 0, when << ": no get noticed the damage");
    }
    db.close();
  }
}

// (b) Truncated files.
BOOST_DATA_TEST_CASE(truncated_file_is_corruption, bdata::make(corobtree::test::all_backends()),
                     backend) {
  const auto seed = corobtree::test::test_seed("truncated_file_is_corruption " + backend.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("trunc.db");
  const Model model = build(path, options_for(backend), rng);
  const std::string pristine = read_file_bytes(path);
  const std::uint64_t pages = pristine.size() / kPage;
  for (std::uint64_t size :
       {std::uint64_t{100}, std::uint64_t{kPage}, std::uint64_t{kPage} * 3 / 2,
        std::uint64_t{kPage} * 2, std::uint64_t{kPage} * 3, (pages - 1) * kPage}) {
    write_file_bytes(path, pristine);
    BOOST_REQUIRE_EQUAL(::truncate(path.c_str(), static_cast<off_t>(size)), 0);
    const Error e = error_of([&] { BlockingDatabase::open(path, options_for(backend)); });
    BOOST_TEST_MESSAGE(size << " bytes: " << e.what());
    BOOST_REQUIRE_MESSAGE(
        e.code() == ErrorCode::kCorruption,
        "truncated to " << size << " bytes: " << code_name(e.code()) << ": " << e.what());
  }
  // Losing part of the last page: open may refuse, or notice when the page is read.
  write_file_bytes(path, pristine);
  BOOST_REQUIRE_EQUAL(
      ::truncate(path.c_str(), static_cast<off_t>(pages * kPage - 1 - rng() % (kPage / 2))), 0);
  try {
    auto db = BlockingDatabase::open(path, options_for(backend));
    try {
      const auto all = db.scan();
      BOOST_REQUIRE(all == Pairs(model.begin(), model.end()));
    } catch (const Error& e) {
      BOOST_REQUIRE_MESSAGE(e.code() == ErrorCode::kCorruption, code_name(e.code())
                                                                    << ": " << e.what());
    }
    const auto report = db.validate();
    BOOST_TEST_MESSAGE("partial last page: " << report.summary());
  } catch (const Error& e) {
    BOOST_REQUIRE_MESSAGE(e.code() == ErrorCode::kCorruption, code_name(e.code())
                                                                  << ": " << e.what());
  }
  write_file_bytes(path, pristine);  // and the untouched file still opens
  auto db = BlockingDatabase::open(path, options_for(backend));
  require_intact(db, model, "untouched");
}

// (c) Garbage and (d) empty files.
BOOST_DATA_TEST_CASE(garbage_and_empty_files, bdata::make(corobtree::test::all_backends()),
                     backend) {
  const auto seed = corobtree::test::test_seed("garbage_and_empty_files " + backend.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("garbage.db");
  write_file_bytes(path, random_bytes(rng, 64 * 1024));
  const Error garbage = error_of([&] { BlockingDatabase::open(path, options_for(backend)); });
  BOOST_REQUIRE_MESSAGE(garbage.code() == ErrorCode::kCorruption, code_name(garbage.code())
                                                                      << ": " << garbage.what());
  BOOST_REQUIRE_MESSAGE(
      std::string(garbage.what()).find("not a corobtree database") != std::string::npos,
      garbage.what());
  BOOST_REQUIRE(read_file_bytes(path).size() == 64 * 1024);  // left alone

  write_file_bytes(path, "");
  const Error empty = error_of([&] { BlockingDatabase::open(path, options_for(backend)); });
  BOOST_REQUIRE_MESSAGE(empty.code() == ErrorCode::kCorruption, code_name(empty.code())
                                                                    << ": " << empty.what());
  BOOST_REQUIRE(read_file_bytes(path).empty());

  write_file_bytes(path, std::string(3 * kPage, '\0'));  // all zeros
  const Error zeros = error_of([&] { BlockingDatabase::open(path, options_for(backend)); });
  BOOST_REQUIRE_MESSAGE(zeros.code() == ErrorCode::kCorruption, code_name(zeros.code())
                                                                    << ": " << zeros.what());
}

// (e) Meta pages.
BOOST_DATA_TEST_CASE(damaged_meta_pages, bdata::make(corobtree::test::all_backends()), backend) {
  const auto seed = corobtree::test::test_seed("damaged_meta_pages " + backend.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("meta.db");
  const Model model = build(path, options_for(backend), rng);
  const std::string pristine = read_file_bytes(path);
  // Both damaged, past the magic number (checksum mismatch) or in it.
  for (std::uint64_t at : {std::uint64_t{30}, std::uint64_t{8}, std::uint64_t{kPage - 1}}) {
    write_file_bytes(path, pristine);
    flip_byte(path, pristine, at, 0x5a);
    flip_byte(path, pristine, kPage + at, 0x5a);
    const Error e = error_of([&] { BlockingDatabase::open(path, options_for(backend)); });
    BOOST_REQUIRE_MESSAGE(
        e.code() == ErrorCode::kCorruption,
        "both metas damaged at " << at << ": " << code_name(e.code()) << ": " << e.what());
  }
  // One damaged: the other one opens the database, intact.
  for (std::uint64_t block : {0, 1}) {
    for (std::uint64_t at : {std::uint64_t{30}, std::uint64_t{8}, std::uint64_t{20}}) {
      write_file_bytes(path, pristine);
      flip_byte(path, pristine, block * kPage + at, 0x5a);
      const std::string when =
          "meta " + std::to_string(block) + " damaged at " + std::to_string(at);
      {
        auto db = BlockingDatabase::open(path, options_for(backend));
        const auto all = db.scan();
        BOOST_REQUIRE_MESSAGE(all == Pairs(model.begin(), model.end()),
                              when << ": contents differ");
        // validate() reports the damaged copy, and only that.
        const auto report = db.validate();
        BOOST_REQUIRE_MESSAGE(
            report.problems.size() == 1 &&
                report.problems[0].find("meta page " + std::to_string(block)) != std::string::npos,
            when << ": " << report.summary());
        db.put("after", "repair");
      }
      // Recovery's checkpoint rewrote the damaged copy: from here on the file is sound.
      auto db = BlockingDatabase::open(path, options_for(backend));
      BOOST_REQUIRE_MESSAGE(db.get("after") == std::optional<std::string>("repair"),
                            when << ": write after open lost");
      BOOST_REQUIRE(db.erase("after"));
      require_intact(db, model, when + ", reopened");
    }
  }
}

// (f) Another format version.
BOOST_DATA_TEST_CASE(unknown_format_version, bdata::make(corobtree::test::all_backends()),
                     backend) {
  const auto seed = corobtree::test::test_seed("unknown_format_version " + backend.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("version.db");
  build(path, options_for(backend), rng);
  const std::string pristine = read_file_bytes(path);
  for (bool restamp : {false, true}) {
    std::string patched = pristine;
    for (std::uint64_t block : {0, 1}) {
      const std::uint32_t version = 2;
      std::memcpy(patched.data() + block * kPage + 16, &version, sizeof version);
      if (restamp) {  // as a future version of the library would write it
        auto* p = reinterpret_cast<std::byte*>(patched.data() + block * kPage);
        corobtree::page::stamp_checksum(block, std::span<std::byte>(p, kPage));
      }
    }
    write_file_bytes(path, patched);
    const Error e = error_of([&] { BlockingDatabase::open(path, options_for(backend)); });
    BOOST_TEST_MESSAGE("restamp=" << restamp << ": " << code_name(e.code()) << ": " << e.what());
    BOOST_REQUIRE_MESSAGE(
        e.code() == ErrorCode::kNotSupported || e.code() == ErrorCode::kCorruption,
        code_name(e.code()) << ": " << e.what());
    BOOST_REQUIRE_MESSAGE(std::string(e.what()).find("version") != std::string::npos, e.what());
  }
}

// (g) A page size that is not the file's.
BOOST_DATA_TEST_CASE(conflicting_page_size, bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::TempDir dir;
  const std::string path4 = dir.file("p4k.db");
  const std::string path8 = dir.file("p8k.db");
  {
    auto db4 = BlockingDatabase::open(path4, options_for(backend));
    db4.put("k", "4");
    auto db8 = BlockingDatabase::open(path8, options_for(backend, 8192));
    db8.put("k", "8");
  }
  for (std::uint32_t ps : {512u, 8192u, 65536u}) {
    const Error e = error_of([&] { BlockingDatabase::open(path4, options_for(backend, ps)); });
    BOOST_REQUIRE_MESSAGE(e.code() == ErrorCode::kInvalidArgument,
                          ps << ": " << code_name(e.code()) << ": " << e.what());
  }
  const Error e = error_of([&] { BlockingDatabase::open(path8, options_for(backend, 4096)); });
  BOOST_REQUIRE_MESSAGE(e.code() == ErrorCode::kInvalidArgument, code_name(e.code())
                                                                     << ": " << e.what());
  BOOST_REQUIRE_MESSAGE(std::string(e.what()).find("8192") != std::string::npos, e.what());
  // Matching or unspecified page sizes open, and nothing was changed by the refusals.
  auto db8 = BlockingDatabase::open(path8, options_for(backend));
  BOOST_REQUIRE_EQUAL(db8.stats().page_size, 8192u);
  BOOST_REQUIRE(db8.get("k") == std::optional<std::string>("8"));
  auto db4 = BlockingDatabase::open(path4, options_for(backend, 4096));
  BOOST_REQUIRE(db4.get("k") == std::optional<std::string>("4"));
  BOOST_REQUIRE(db4.validate().ok());
}

// (h) A second process (and a second handle in this one) gets kLocked.
BOOST_DATA_TEST_CASE(second_opener_gets_locked, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("locked.db");
  // The child reports the outcome of its open as its exit status.
  auto open_in_child = [&]() {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      int status = 1;  // opened: the lock did not hold
      try {
        auto other = BlockingDatabase::open(path, options_for(backend));
        ::_exit(status);  // without closing: the child must not write
      } catch (const Error& e) {
        status = 10 + static_cast<int>(e.code());
      } catch (...) {
        status = 2;
      }
      ::_exit(status);
    }
    int wstatus = 0;
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &wstatus, 0), pid);
    BOOST_REQUIRE_MESSAGE(WIFEXITED(wstatus), "the child did not exit normally");
    return WEXITSTATUS(wstatus);
  };
  {
    auto db = BlockingDatabase::open(path, options_for(backend));
    db.put("k", "v");
    db.checkpoint();
    const int status = open_in_child();
    BOOST_REQUIRE_MESSAGE(
        status == 10 + static_cast<int>(ErrorCode::kLocked),
        "the child's open ended with status " << status << " (10 + ErrorCode), expected kLocked");
    const Error e = error_of([&] { BlockingDatabase::open(path, options_for(backend)); });
    BOOST_REQUIRE_MESSAGE(e.code() == ErrorCode::kLocked, code_name(e.code()) << ": " << e.what());
    BOOST_REQUIRE(db.get("k") == std::optional<std::string>("v"));  // the holder is unaffected
    db.close();
  }
  BOOST_REQUIRE_EQUAL(open_in_child(), 1);  // released on close
  auto db = BlockingDatabase::open(path, options_for(backend));
  BOOST_REQUIRE(db.get("k") == std::optional<std::string>("v"));
}

// (i) Oversize keys change nothing, in memory or on disk.
BOOST_DATA_TEST_CASE(oversize_key_changes_nothing, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("key.db");
  Model model;
  {
    auto db = BlockingDatabase::open(path, options_for(backend));
    for (int i = 0; i < 100; ++i) {
      db.put("key" + std::to_string(i), "v" + std::to_string(i));
      model["key" + std::to_string(i)] = "v" + std::to_string(i);
    }
    const std::string too_long(db.max_key_size() + 1, 'x');
    BOOST_REQUIRE(error_of([&] { db.put(too_long, "v"); }).code() == ErrorCode::kInvalidArgument);
    BOOST_REQUIRE(error_of([&] { db.erase(too_long); }).code() == ErrorCode::kInvalidArgument);
    BOOST_REQUIRE(error_of([&] { (void)db.get(too_long); }).code() == ErrorCode::kInvalidArgument);
    require_intact(db, model, "after oversize keys");
    BOOST_REQUIRE_EQUAL(db.count(), model.size());
  }
  auto db = BlockingDatabase::open(path, options_for(backend));
  require_intact(db, model, "reopened after oversize keys");
}
