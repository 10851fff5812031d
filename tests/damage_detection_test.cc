// How much random damage `corobtree check` flags (issue: damage detection
// must stay >= 99%). A database with leaves, inner nodes, overflow values and
// free pages is closed cleanly; then, trial by trial, a copy of it gets one
// random damage and the built tool (COROBTREE_CLI) runs `check` on it:
//   * flipped bits: 1 to 8 random bits of one random page, meta pages included;
//   * a zeroed 512-byte sector;
//   * a garbage page: random bytes over one whole page;
//   * truncation at a random length.
// A trial that leaves the bytes unchanged (a sector that was zero already)
// is not damage and is drawn again. `check` must exit 2 (corrupt) for at
// least 99% of the trials of every kind, must never crash, and must never
// fail any other way. Trials alternate --io uring and --io pread. Prints its
// seed and the rate per kind; `-- --seed=N` replays a run.
#define BOOST_TEST_MODULE damage_detection
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include "tests/support/file_bytes.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

using corobtree::BlockingDatabase;
using corobtree::test::read_file_bytes;
using corobtree::test::write_file_bytes;

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kSector = 512;

// Exit code of `corobtree --io IO check PATH` (128 + signal if it died),
// with its output discarded.
int run_check(const std::string& io, const std::string& path) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::string exe = COROBTREE_CLI, flag = "--io", io_arg = io, cmd = "check", p = path;
    char* argv[] = {exe.data(), flag.data(), io_arg.data(), cmd.data(), p.data(), nullptr};
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  BOOST_REQUIRE(pid > 0);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A database of every page kind, closed cleanly (no log beside it).
void build(const std::string& path, std::mt19937_64& rng) {
  corobtree::Options o;
  o.pool_pages = 64;
  o.durability = corobtree::Durability::kRelaxed;  // the file is synced at close
  auto db = BlockingDatabase::open(path, o);
  const int n = corobtree::test::scaled(6000, 1500);
  for (int i = 0; i < n; ++i) {
    const std::string key = "key-" + std::to_string(rng() % 1000000);
    const std::size_t len = i % 97 == 0 ? 3000 + rng() % 9000 : 10 + rng() % 200;
    db.put(key, std::string(len, static_cast<char>('a' + i % 26)));
  }
  auto all = db.scan();
  for (std::size_t i = 0; i < all.size(); i += 3) db.erase(all[i].first);  // free pages
  BOOST_REQUIRE(db.validate().ok());
  db.close();
}

enum class Kind { kBitFlips, kZeroSector, kGarbagePage, kTruncation };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kBitFlips: return "flipped bits";
    case Kind::kZeroSector: return "zeroed sector";
    case Kind::kGarbagePage: return "garbage page";
    case Kind::kTruncation: return "truncation";
  }
  return "?";
}

// One random damage of `kind`; a description of it in `what`.
std::string damage(const std::string& pristine, Kind kind, std::mt19937_64& rng,
                   std::string& what) {
  std::string bytes = pristine;
  const std::size_t pages = bytes.size() / kPage;
  const std::size_t page = rng() % pages;
  switch (kind) {
    case Kind::kBitFlips: {
      const int bits = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < bits; ++i) {
        bytes[page * kPage + rng() % kPage] ^= static_cast<char>(1u << (rng() % 8));
      }
      what = std::to_string(bits) + " bit flips in page " + std::to_string(page);
      break;
    }
    case Kind::kZeroSector: {
      const std::size_t sector = rng() % (bytes.size() / kSector);
      std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(sector * kSector), kSector, '\0');
      what = "sector " + std::to_string(sector) + " zeroed";
      break;
    }
    case Kind::kGarbagePage: {
      for (std::size_t i = 0; i < kPage; ++i) bytes[page * kPage + i] = static_cast<char>(rng());
      what = "page " + std::to_string(page) + " overwritten with garbage";
      break;
    }
    case Kind::kTruncation: {
      bytes.resize(rng() % bytes.size());
      what = "truncated to " + std::to_string(bytes.size()) + " bytes";
      break;
    }
  }
  return bytes;
}

}  // namespace

BOOST_AUTO_TEST_CASE(check_flags_at_least_99_percent_of_random_damage) {
  const auto seed = corobtree::test::test_seed("check_flags_at_least_99_percent_of_random_damage");
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("damage.db");
  build(path, rng);
  const std::string pristine = read_file_bytes(path);
  BOOST_TEST_MESSAGE("database: " << pristine.size() / kPage << " pages of " << kPage
                                  << " bytes; seed " << seed);
  BOOST_REQUIRE_EQUAL(run_check("pread", path), 0);

  const int trials = corobtree::test::scaled(200, 50);
  int total_flagged = 0;
  int total = 0;
  for (Kind kind : {Kind::kBitFlips, Kind::kZeroSector, Kind::kGarbagePage, Kind::kTruncation}) {
    int flagged = 0;
    std::vector<std::string> missed;
    for (int t = 0; t < trials; ++t) {
      std::string what;
      std::string damaged = damage(pristine, kind, rng, what);
      while (damaged == pristine) damaged = damage(pristine, kind, rng, what);
      write_file_bytes(path, damaged);
      ::unlink((path + "-wal").c_str());
      ::unlink((path + "-wal2").c_str());
      const std::string io = t % 2 == 0 ? "uring" : "pread";
      const int code = run_check(io, path);
      BOOST_REQUIRE_MESSAGE(code == 0 || code == 2, what << " (--io " << io << "): check exited "
                                                         << code << " (seed " << seed << ")");
      if (code == 2) {
        ++flagged;
      } else if (missed.size() < 5) {
        missed.push_back(what + " (--io " + io + ")");
      }
    }
    const double rate = 100.0 * flagged / trials;
    std::string examples;
    for (const auto& m : missed) examples += "\n    missed: " + m;
    BOOST_TEST_MESSAGE(kind_name(kind) << ": " << flagged << " of " << trials << " flagged ("
                                       << rate << "%)" << examples);
    BOOST_CHECK_MESSAGE(flagged * 100 >= trials * 99,
                        kind_name(kind) << ": only " << rate << "% flagged" << examples);
    total_flagged += flagged;
    total += trials;
  }
  BOOST_TEST_MESSAGE("all kinds: " << total_flagged << " of " << total << " flagged");
  BOOST_CHECK(total_flagged * 100 >= total * 99);
}

// The copy of the meta page that is not in use is damage too: the database
// still opens through the other one, and check names the damaged one.
BOOST_AUTO_TEST_CASE(check_flags_either_damaged_meta_page) {
  const auto seed = corobtree::test::test_seed("check_flags_either_damaged_meta_page");
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("meta.db");
  build(path, rng);
  const std::string pristine = read_file_bytes(path);
  for (std::size_t meta = 0; meta < 2; ++meta) {
    for (const std::string io : {"uring", "pread"}) {
      std::string damaged = pristine;
      damaged[meta * kPage + 100 + rng() % 3000] ^= 0x10;
      write_file_bytes(path, damaged);
      BOOST_TEST_INFO("meta page " << meta << ", --io " << io);
      BOOST_CHECK_EQUAL(run_check(io, path), 2);
      corobtree::Options o;
      o.backend = corobtree::parse_backend(io);
      auto db = BlockingDatabase::open(path, o);
      const auto report = db.validate();
      BOOST_REQUIRE_EQUAL(report.problems.size(), 1u);
      BOOST_CHECK(report.problems[0].find("meta page " + std::to_string(meta)) !=
                  std::string::npos);
      BOOST_CHECK_EQUAL(db.scan().size(), db.count());  // the tree reads as before
      db.close();
    }
  }
}
