// RecordLog (engine/log/record_log.h) on both backends: a scan ignores a torn
// last record whatever byte it is torn at, and appending resumes after the
// last valid record; a write's last block, rewritten by the next, keeps its
// records however the rewrite is torn; records from before a reset never verify (the chain is
// seeded by the salt, which a reset changes); group commit acknowledges many
// writers with one fsync; relaxed durability writes without fsyncs; a failed
// write makes the log unusable.
#define BOOST_TEST_MODULE record_log
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>
#include <corobtree/yield.h>

#include "engine/log/log_format.h"
#include "engine/log/record_log.h"
#include "io/disk_manager.h"
#include "tests/support/backends.h"
#include "tests/support/fault_disk.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::DiskManager;
using corobtree::Durability;
using corobtree::Error;
using corobtree::RecordLog;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::test::BackendConfig;
using corobtree::test::TempDir;

namespace {

constexpr std::uint32_t kPage = 512;
constexpr std::uint64_t kDatabaseId = 0x1234abcd5678ef01ull;
constexpr std::uint16_t kType = 7;  // a client's record type

// The log is always a buffered file (the database never opens it O_DIRECT).
std::vector<BackendConfig> log_backends() {
  std::vector<BackendConfig> out;
  for (const BackendConfig& c : corobtree::test::all_backends()) {
    if (!c.direct_io) out.push_back(c);
  }
  return out;
}

struct Seen {
  std::uint16_t type;
  std::uint64_t lsn;
  std::uint64_t page;
  std::uint64_t offset;
  std::string payload;
};

// Accepts every record and keeps a copy.
class Collect final : public RecordLog::Visitor {
 public:
  void begin(std::uint64_t base_lsn) override {
    began = true;
    base = base_lsn;
  }
  bool accept(const RecordLog::Record& r) override {
    seen.push_back(
        Seen{r.type, r.lsn, r.page, r.offset,
             std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size())});
    return true;
  }
  bool began = false;
  std::uint64_t base = 0;
  std::vector<Seen> seen;
};

std::string payload_for(int i, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t j = 0; j < n; ++j) s[j] = static_cast<char>('a' + (i * 7 + j) % 26);
  return s;
}

std::span<const std::byte> bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

struct Fixture {
  explicit Fixture(const BackendConfig& c) : cfg(c) {}
  std::unique_ptr<DiskManager> open_file() const {
    return DiskManager::open(path, cfg.options(kPage));
  }
  std::unique_ptr<RecordLog> fresh(Durability d = Durability::kSync,
                                   std::uint64_t last_commit = 0) const {
    return std::make_unique<RecordLog>(open_file(), kDatabaseId, d, last_commit);
  }
  // Scans the file (the log writing it must be closed).
  RecordLog::ScanEnd scan(Collect& c) const {
    std::unique_ptr<DiskManager> f = open_file();
    return sync_wait(RecordLog::scan(*f, kDatabaseId, c));
  }

  BackendConfig cfg;
  TempDir dir;
  std::string path = dir.file("x.db-wal");
};

}  // namespace

// A scan hands back exactly what was appended, in order.
BOOST_DATA_TEST_CASE(scan_returns_the_appended_records, bdata::make(log_backends()), cfg) {
  Fixture fx(cfg);
  std::vector<std::uint64_t> offsets;
  {
    auto log = fx.fresh(Durability::kSync, 41);
    for (int i = 0; i < 40; ++i) {
      const std::string p = payload_for(i, static_cast<std::size_t>(i * 37 % 700));
      offsets.push_back(log->append(kType, 100 + i, 1000 + i, bytes(p)));
    }
    sync_wait(log->sync_all());
    log->close();
  }
  Collect c;
  const RecordLog::ScanEnd end = fx.scan(c);
  BOOST_TEST(end.header);
  BOOST_TEST(c.began);
  BOOST_TEST(c.base == 41u);  // the header records the commit the generation follows
  BOOST_REQUIRE_EQUAL(c.seen.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    const Seen& s = c.seen[static_cast<std::size_t>(i)];
    BOOST_TEST(s.type == kType);
    BOOST_TEST(s.lsn == 100u + i);
    BOOST_TEST(s.page == 1000u + i);
    BOOST_TEST(s.offset == offsets[static_cast<std::size_t>(i)]);
    BOOST_TEST(s.payload == payload_for(i, static_cast<std::size_t>(i * 37 % 700)));
  }
  // A log of another database holds nothing.
  Collect other;
  std::unique_ptr<DiskManager> f = fx.open_file();
  BOOST_TEST(!sync_wait(RecordLog::scan(*f, kDatabaseId + 1, other)).header);
  BOOST_TEST(other.seen.empty());
}

// The last record torn at every byte (the write stopped there: zeros after)
// or damaged at every byte: the scan ends before it and keeps the others.
BOOST_DATA_TEST_CASE(torn_tail_at_every_byte_of_the_last_record, bdata::make(log_backends()), cfg) {
  Fixture fx(cfg);
  const std::string last = payload_for(3, 150);
  std::uint64_t last_offset = 0;
  {
    auto log = fx.fresh();
    for (int i = 0; i < 3; ++i) log->append(kType, i + 1, 0, bytes(payload_for(i, 100 + i)));
    last_offset = log->append(kType, 4, 0, bytes(last));
    sync_wait(log->sync_all());
    log->close();
  }
  const std::uint64_t last_end = last_offset + corobtree::RecordHeader::kSize + last.size();
  // The file up to one block past the records (the log grew it by megabytes).
  std::string good = read_file(fx.path);
  BOOST_REQUIRE(last_end <= good.size());
  good.resize((last_end + kPage - 1) / kPage * kPage + kPage);
  int scans = 0;
  for (std::uint64_t at = last_offset; at < last_end; ++at) {
    for (int variant = 0; variant < 2; ++variant) {
      std::string damaged = good;
      if (variant == 0) {
        std::fill(damaged.begin() + static_cast<long>(at), damaged.end(), '\0');
      } else {
        damaged[at] = static_cast<char>(damaged[at] ^ 0x20);
      }
      write_file(fx.path, damaged);
      Collect c;
      const RecordLog::ScanEnd end = fx.scan(c);
      BOOST_REQUIRE_MESSAGE(c.seen.size() == 3u, "variant " << variant << " at byte "
                                                            << at - last_offset << ": "
                                                            << c.seen.size() << " records");
      BOOST_REQUIRE_EQUAL(end.end, last_offset);
      BOOST_TEST(c.seen[2].payload == payload_for(2, 102));
      ++scans;
    }
  }
  BOOST_TEST(scans == 2 * static_cast<int>(last_end - last_offset));

  // Appending resumes right after the last valid record, in the same
  // generation: the old records and the new one all verify.
  {
    std::string damaged = good;
    damaged[last_offset + 40] = static_cast<char>(damaged[last_offset + 40] ^ 1);
    write_file(fx.path, damaged);
    Collect c;
    std::unique_ptr<DiskManager> f = fx.open_file();
    const RecordLog::ScanEnd end = sync_wait(RecordLog::scan(*f, kDatabaseId, c));
    BOOST_REQUIRE_EQUAL(c.seen.size(), 3u);
    std::unique_ptr<RecordLog> log =
        sync_wait(RecordLog::resume(std::move(f), kDatabaseId, Durability::kSync, end, 3));
    BOOST_TEST(log->last_commit() == 3u);
    BOOST_TEST(log->append(kType, 9, 0, bytes("after")) == last_offset);
    sync_wait(log->sync_all());
    log->close();
  }
  Collect c;
  fx.scan(c);
  BOOST_REQUIRE_EQUAL(c.seen.size(), 4u);
  BOOST_TEST(c.seen[3].lsn == 9u);
  BOOST_TEST(c.seen[3].payload == "after");
}

// A reset starts a generation with a new salt: the records of the old one,
// still in the file after the new ones, never verify.
BOOST_DATA_TEST_CASE(records_from_before_a_reset_never_verify, bdata::make(log_backends()), cfg) {
  Fixture fx(cfg);
  auto log = fx.fresh();
  for (int i = 0; i < 30; ++i) log->append(kType, 1, 0, bytes(payload_for(i, 300)));
  const std::uint64_t commit = log->append_commit(kType, bytes("c"));
  sync_wait(log->sync_all());
  const std::uint64_t old_salt = log->salt();
  const std::uint64_t old_generation = log->generation();
  const std::string first_generation = read_file(fx.path);
  sync_wait(log->reset());
  BOOST_TEST(log->salt() != old_salt);
  BOOST_TEST(log->generation() == old_generation + 1);
  BOOST_TEST(log->bytes() == 0u);
  log->append(kType, 2, 0, bytes("new"));
  sync_wait(log->sync_all());
  log->close();
  const std::string second_generation = read_file(fx.path);
  {
    Collect c;
    const RecordLog::ScanEnd end = fx.scan(c);
    BOOST_REQUIRE_EQUAL(c.seen.size(), 1u);  // the old records further on do not verify
    BOOST_TEST(c.seen[0].payload == "new");
    BOOST_TEST(c.base == commit);  // based on the last commit before the reset
    BOOST_TEST(end.end < first_generation.size());
  }
  // The old generation's records under the new header: none verifies.
  {
    std::string spliced = first_generation;
    std::copy(second_generation.begin(), second_generation.begin() + kPage, spliced.begin());
    write_file(fx.path, spliced);
    Collect c;
    BOOST_TEST(fx.scan(c).header);
    BOOST_TEST(c.seen.empty());
  }
  // The new generation's records under the old header: none verifies.
  {
    std::string spliced = second_generation;
    std::copy(first_generation.begin(), first_generation.begin() + kPage, spliced.begin());
    write_file(fx.path, spliced);
    Collect c;
    BOOST_TEST(fx.scan(c).header);
    BOOST_TEST(c.seen.empty());
  }
}

namespace {

Task<void> committer(RecordLog& log, int i) {
  std::uint64_t n = 0;
  {
    const RecordLog::WriterCount counted(log);
    co_await corobtree::yield();  // everybody is counted in before the first commit
    const std::string payload = payload_for(i, 20);
    n = log.append_commit(kType, bytes(payload));
  }
  co_await log.wait_durable(n);
  BOOST_TEST(log.durable_commit() >= n);
}

Task<void> committers(RecordLog& log, int n) {
  std::vector<Task<void>> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back(committer(log, i));
  co_await corobtree::when_all(std::move(tasks));
}

}  // namespace

// A write is not padded: the next record follows the last one in the same
// block, and the next write rewrites that block with the same bytes before
// it. However that rewrite and the blocks after it are torn (any prefix of
// its blocks, or any one of them alone, reached the disk), the scan keeps the
// acknowledged records and never hands back a damaged one.
BOOST_DATA_TEST_CASE(a_torn_rewrite_of_the_last_block_keeps_acknowledged_records,
                     bdata::make(log_backends()), cfg) {
  Fixture fx(cfg);
  const std::string a = payload_for(1, 100);
  const std::string b = payload_for(2, 900);  // reaches into later blocks
  std::uint64_t b_offset = 0;
  std::string before;
  std::string after;
  {
    auto log = fx.fresh();
    BOOST_TEST(log->append(kType, 1, 0, bytes(a)) == kPage);
    sync_wait(log->sync_all());
    BOOST_TEST(log->bytes() == corobtree::RecordHeader::kSize + a.size());
    before = read_file(fx.path);
    b_offset = log->append(kType, 2, 0, bytes(b));
    BOOST_TEST(b_offset == kPage + corobtree::RecordHeader::kSize + a.size());  // no padding
    sync_wait(log->sync_all());
    BOOST_TEST(log->stats().writes == 2u);
    log->close();
    after = read_file(fx.path);
  }
  BOOST_REQUIRE_EQUAL(before.size(), after.size());
  // The rewritten block holds the same bytes before the second record.
  BOOST_TEST(before.compare(0, b_offset, after, 0, b_offset) == 0);
  const std::uint64_t b_end = b_offset + corobtree::RecordHeader::kSize + b.size();
  const std::uint64_t first = 1;
  const std::uint64_t last = (b_end - 1) / kPage;
  auto with_blocks = [&](std::uint64_t from, std::uint64_t to) {  // blocks [from, to] of `after`
    std::string d = before;
    d.replace(from * kPage, (to - from + 1) * kPage, after, from * kPage, (to - from + 1) * kPage);
    return d;
  };
  std::vector<std::string> variants;
  for (std::uint64_t k = first; k <= last; ++k) variants.push_back(with_blocks(first, k));
  for (std::uint64_t k = first; k <= last; ++k) variants.push_back(with_blocks(k, k));
  for (const std::string& v : variants) {
    write_file(fx.path, v);
    Collect c;
    fx.scan(c);
    BOOST_REQUIRE(!c.seen.empty());
    BOOST_TEST(c.seen[0].payload == a);
    BOOST_TEST(c.seen.size() <= 2u);
    if (c.seen.size() == 2) BOOST_TEST(c.seen[1].payload == b);
  }
  write_file(fx.path, after);
  Collect c;
  fx.scan(c);
  BOOST_REQUIRE_EQUAL(c.seen.size(), 2u);
  BOOST_TEST(c.seen[1].payload == b);
}

// Writers counted in are waited for: one write and one fsync acknowledge
// every commit appended meanwhile.
BOOST_DATA_TEST_CASE(group_commit_shares_one_fsync, bdata::make(log_backends()), cfg) {
  Fixture fx(cfg);
  auto log = fx.fresh();
  sync_wait(committers(*log, 48));
  BOOST_TEST(log->last_commit() == 48u);
  BOOST_TEST(log->durable_commit() == 48u);
  BOOST_TEST(log->stats().syncs == 1u);
  BOOST_TEST(log->stats().writes == 1u);
  BOOST_TEST(log->stats().largest_group == 48u);
  // Another round: again one fsync for all.
  sync_wait(committers(*log, 16));
  BOOST_TEST(log->stats().syncs == 2u);
  BOOST_TEST(log->durable_commit() == 64u);
  log->close();
  Collect c;
  fx.scan(c);
  BOOST_TEST(c.seen.size() == 64u);
}

namespace {

Task<void> commit_one_by_one(RecordLog& log, int n) {
  for (int i = 0; i < n; ++i) {
    const std::uint64_t c = log.append_commit(kType, bytes(payload_for(i, 50)));
    co_await log.wait_durable(c);
  }
}

}  // namespace

// kSync: a commit returns after an fsync; kRelaxed: after the write alone,
// and the records are in the file all the same. Growing the file, kSync
// writes its new blocks with zeros first (4 MiB: 8192 blocks of 512 bytes);
// kRelaxed only allocates them.
BOOST_DATA_TEST_CASE(relaxed_writes_without_fsync, bdata::make(log_backends()), cfg) {
  {
    Fixture fx(cfg);
    std::unique_ptr<DiskManager> file = fx.open_file();
    const DiskManager* raw = file.get();
    auto log = std::make_unique<RecordLog>(std::move(file), kDatabaseId, Durability::kSync, 0);
    sync_wait(commit_one_by_one(*log, 10));
    BOOST_TEST(log->stats().syncs == 10u);
    BOOST_TEST(log->stats().writes == 10u);
    BOOST_TEST(raw->stats().writes >= 8192u);  // the zero-fill
  }
  Fixture fx(cfg);
  std::unique_ptr<DiskManager> file = fx.open_file();
  const DiskManager* raw = file.get();
  auto log = std::make_unique<RecordLog>(std::move(file), kDatabaseId, Durability::kRelaxed, 0);
  sync_wait(commit_one_by_one(*log, 10));
  BOOST_TEST(log->stats().syncs == 0u);
  BOOST_TEST(log->stats().writes == 10u);
  BOOST_TEST(raw->stats().writes < 100u);  // the records (and header) only
  BOOST_TEST(log->durable_commit() == 10u);
  sync_wait(log->sync_all());  // whatever the mode
  BOOST_TEST(log->stats().syncs == 1u);
  log->close();
  Collect c;
  fx.scan(c);
  BOOST_TEST(c.seen.size() == 10u);
}

// A large tail is written before any commit asks for it (spill), and stays
// readable: from memory before, from the file after.
BOOST_DATA_TEST_CASE(spilled_records_read_back, bdata::make(log_backends()), cfg) {
  Fixture fx(cfg);
  auto log = fx.fresh();
  std::vector<std::uint64_t> offsets;
  const std::string big = payload_for(5, 60000);
  for (int i = 0; i < 40; ++i) {
    offsets.push_back(log->append(kType, 1, i, bytes(big)));
    sync_wait(log->spill());
  }
  BOOST_TEST(log->stats().writes >= 2u);
  BOOST_TEST(log->stats().syncs == 0u);
  for (std::uint64_t off : offsets) {
    std::string out(big.size(), '\0');
    sync_wait(
        log->read(off, std::span<std::byte>(reinterpret_cast<std::byte*>(out.data()), out.size())));
    BOOST_REQUIRE(out == big);
  }
  BOOST_TEST(log->stats().reads > 0u);  // some came from the file
}

// A failed write stops the log: the commit waiting for it, and every later
// call, report the error.
BOOST_DATA_TEST_CASE(a_failed_write_makes_the_log_unusable, bdata::make(log_backends()), cfg) {
  Fixture fx(cfg);
  auto plan = std::make_shared<corobtree::test::FaultPlan>(1);
  RecordLog log(plan->wrapper()(fx.open_file()), kDatabaseId, Durability::kSync, 0);
  sync_wait(commit_one_by_one(log, 2));
  plan->fail_at = plan->ops();
  plan->persistent = true;
  const std::uint64_t n = log.append_commit(kType, bytes("doomed"));
  BOOST_CHECK_THROW(sync_wait(log.wait_durable(n)), Error);
  BOOST_TEST(static_cast<bool>(log.failure()));
  BOOST_CHECK_THROW(log.append(kType, 1, 0, bytes("x")), Error);
  BOOST_CHECK_THROW(sync_wait(log.wait_durable(n)), Error);
  BOOST_CHECK_THROW(sync_wait(log.sync_all()), Error);
  BOOST_CHECK_THROW(sync_wait(log.reset()), Error);
}
