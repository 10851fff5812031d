// Recovery and Checkpointer (engine/log/checkpointer.h), on both backends:
//  - a crafted log whose checkpoint record was durable but whose checkpoint
//    never reached the data file: open finishes it from the logged images
//    (and only those before the record), writes its meta page, then replays
//    the transactions after it in order, and checkpoints;
//  - commits after that are replayed at the next open; close checkpoints,
//    mirrors the meta page and deletes the log;
//  - a transaction whose operations are damaged (CRC intact) fails the open
//    with kCorruption naming the log;
//  - a power loss at every point of a real database's checkpoint: the next
//    open finishes the checkpoint when its images were durable, and holds
//    every key.
#define BOOST_TEST_MODULE checkpoint
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/write_batch.h>

#include "engine/format/meta.h"
#include "engine/log/batch_format.h"
#include "engine/log/checkpointer.h"
#include "engine/log/log_format.h"
#include "engine/log/record_log.h"
#include "engine/log/write_batch_internal.h"
#include "engine/pager/buffer_pool.h"
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"
#include "tests/support/backends.h"
#include "tests/support/fault_disk.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::AlignedBuffer;
using corobtree::BlockId;
using corobtree::BlockingDatabase;
using corobtree::BufferPool;
using corobtree::Checkpointer;
using corobtree::CommitState;
using corobtree::DiskManager;
using corobtree::Durability;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::IoBackend;
using corobtree::LoggedTree;
using corobtree::Meta;
using corobtree::PageImageStore;
using corobtree::RecordLog;
using corobtree::Recovery;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::TxnRecord;
using corobtree::WriteBatch;
using corobtree::test::TempDir;

namespace {

const std::vector<IoBackend> kBackends = {IoBackend::kUring, IoBackend::kPread};

constexpr std::uint32_t kPage = 4096;
constexpr std::uint64_t kDatabaseId = 0xfeedbeef;
constexpr BlockId kBlocks = 10;

corobtree::DiskOptions disk_options(IoBackend backend) {
  corobtree::DiskOptions o;
  o.page_size = kPage;
  o.backend = backend;
  o.use_env = false;
  return o;
}

AlignedBuffer page_of(BlockId id, int version) {
  AlignedBuffer b(kPage);
  for (std::uint32_t i = 0; i < kPage; ++i) {
    b.data()[i] =
        static_cast<std::byte>((id * 29 + static_cast<BlockId>(version) * 11 + i % 7) & 0xff);
  }
  return b;
}

CommitState state_with(std::uint64_t keys) {
  CommitState s;
  s.tree.root = 2;
  s.tree.height = 1;
  s.tree.key_count = keys;
  s.page_count = kBlocks;
  return s;
}

WriteBatch batch_of(int txn) {
  WriteBatch b;
  b.put("key" + std::to_string(txn), "value" + std::to_string(txn));
  if (txn % 2 == 0) b.erase("key" + std::to_string(txn - 1));
  return b;
}

std::vector<WriteBatch::Op> ops_of(int txn) { return batch_of(txn).ops(); }

bool same_ops(const std::vector<WriteBatch::Op>& a, const std::vector<WriteBatch::Op>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].erase != b[i].erase || a[i].key != b[i].key || a[i].value != b[i].value) return false;
  }
  return true;
}

// The tree the log describes, reduced to what the log layer asks of it.
class FakeTree final : public LoggedTree {
 public:
  Task<void> redo(const WriteBatch& batch) override {
    redone.push_back(batch.ops());
    co_return;
  }
  CommitState commit_state() const override { return state; }

  std::vector<std::vector<WriteBatch::Op>> redone;
  CommitState state = state_with(1000);
};

// A data file: two meta pages and kBlocks - 2 pages at version 0.
struct Files {
  explicit Files(IoBackend b) : backend(b) {
    data = DiskManager::open(dir.file("x.db"), disk_options(backend));
    data->allocate_blocks(kBlocks);
    for (BlockId id = 2; id < kBlocks; ++id)
      sync_wait(data->write_block(id, page_of(id, 0).span()));
    Meta m;
    m.page_size = kPage;
    m.state = state_with(0);
    m.database_id = kDatabaseId;
    for (BlockId id : {BlockId{0}, BlockId{1}}) {
      m.sequence = id;
      AlignedBuffer buf(kPage);
      corobtree::encode_meta(m, id, buf.span());
      sync_wait(data->write_block(id, buf.span()));
    }
    sync_wait(data->sync());
  }
  std::unique_ptr<DiskManager> open_log(const char* name = "x.db-wal") const {
    return DiskManager::open(dir.file(name), disk_options(backend));
  }
  // What Recovery::open takes: NAME-wal and NAME-wal2.
  std::array<std::unique_ptr<DiskManager>, 2> open_logs() const {
    return {open_log("x.db-wal"), open_log("x.db-wal2")};
  }
  // The newest valid meta page of the data file.
  Meta meta() {
    Meta best;
    bool found = false;
    for (BlockId id : {BlockId{0}, BlockId{1}}) {
      AlignedBuffer buf(kPage);
      sync_wait(data->read_block(id, buf.span()));
      const corobtree::DecodedMeta d = corobtree::decode_meta(id, buf.span());
      if (d.status != corobtree::MetaStatus::kValid) continue;
      if (!found || d.meta.sequence > best.sequence) best = d.meta;
      found = true;
    }
    BOOST_REQUIRE(found);
    return best;
  }
  bool page_is(BlockId id, int version) {
    AlignedBuffer buf(kPage);
    sync_wait(data->read_block(id, buf.span()));
    return std::memcmp(buf.data(), page_of(id, version).data(), kPage) == 0;
  }

  IoBackend backend;
  TempDir dir;
  std::unique_ptr<DiskManager> data;
};

void log_txn(RecordLog& log, int txn, const CommitState& state) {
  const WriteBatch b = batch_of(txn);
  log.append(TxnRecord::kOperations, log.last_commit() + 1, 0,
             corobtree::WriteBatchInternal::contents(b));
  std::byte payload[corobtree::CommitRecord::kSize];
  corobtree::encode_commit_record(state, payload);
  log.append_commit(TxnRecord::kCommit, payload);
}

// A checkpoint record of every commit so far, `state` the tree's after them.
void log_checkpoint(RecordLog& log, const CommitState& state) {
  std::byte payload[corobtree::CommitRecord::kSize];
  corobtree::encode_commit_record(state, payload);
  log.append(TxnRecord::kCheckpoint, log.last_commit(), 0, payload);
}

void log_image(RecordLog& log, BlockId id, int version) {
  const AlignedBuffer p = page_of(id, version);
  log.append(PageImageStore::kRecordType, log.last_commit() + 1, id, p.span());
}

}  // namespace

// The checkpoint of transactions 1-2 logged its images and its record, then
// the process died; transactions 3 and 4 followed in the same log.
BOOST_DATA_TEST_CASE(an_interrupted_checkpoint_is_finished_and_later_commits_replayed,
                     bdata::make(kBackends), backend) {
  Files f(backend);
  const CommitState checkpointed = state_with(2);
  {
    RecordLog log(f.open_log(), kDatabaseId, Durability::kSync, 0);
    log_txn(log, 1, state_with(1));
    log_image(log, 5, 1);
    log_image(log, 6, 1);
    log_txn(log, 2, checkpointed);
    log_image(log, 5, 2);  // the newest image of page 5 before the checkpoint
    log_checkpoint(log, checkpointed);
    log_txn(log, 3, state_with(3));
    log_image(log, 7, 3);  // after the checkpoint record: not part of it
    log_txn(log, 4, state_with(4));
    sync_wait(log.sync_all());
    log.close();
  }
  std::unique_ptr<Recovery> rec =
      sync_wait(Recovery::open(f.open_logs(), *f.data, Durability::kSync, f.meta()));
  BOOST_TEST(rec->stats().checkpoint);
  BOOST_TEST(rec->stats().checkpoint_lsn == 2u);
  BOOST_TEST(rec->stats().pages == 2u);
  BOOST_TEST(rec->stats().commits == 2u);
  BOOST_TEST(rec->stats().last_lsn == 4u);
  // The checkpoint is finished: its images are in the data file, its meta page written.
  BOOST_TEST(f.page_is(5, 2));
  BOOST_TEST(f.page_is(6, 1));
  BOOST_TEST(f.page_is(7, 0));
  BOOST_TEST(f.page_is(8, 0));
  const Meta after = f.meta();
  BOOST_TEST(after.sequence == 2u);
  BOOST_TEST(after.checkpoint_lsn == 2u);
  BOOST_TEST((after.state == checkpointed));
  BOOST_TEST(rec->meta().sequence == after.sequence);
  BOOST_TEST((rec->meta().state == checkpointed));
  // Pages the replay does not touch read from the data file again.
  BufferPool pool(*f.data, 8);
  pool.set_store(&rec->page_store());
  AlignedBuffer seven(kPage);
  sync_wait(rec->page_store().read_page(7, seven.span()));
  BOOST_TEST(std::memcmp(seven.data(), page_of(7, 0).data(), kPage) == 0);

  // Replay applies transactions 3 and 4, in order, then checkpoints.
  FakeTree tree;
  std::unique_ptr<Checkpointer> cp = sync_wait(rec->replay(tree, pool));
  BOOST_REQUIRE_EQUAL(tree.redone.size(), 2u);
  BOOST_TEST(same_ops(tree.redone[0], ops_of(3)));
  BOOST_TEST(same_ops(tree.redone[1], ops_of(4)));
  BOOST_TEST(cp->last_lsn() == 4u);
  BOOST_TEST(cp->checkpoints() == 1u);
  BOOST_TEST(!cp->modified());
  const Meta replayed = f.meta();
  BOOST_TEST(replayed.sequence == 3u);
  BOOST_TEST(replayed.checkpoint_lsn == 4u);
  BOOST_TEST((replayed.state == tree.state));
  BOOST_CHECK_THROW(sync_wait(rec->replay(tree, pool)), Error);  // once only

  // A commit after recovery, then a crash (no close): the next open replays it.
  tree.state = state_with(5);
  const WriteBatch five = batch_of(5);
  const std::uint64_t lsn = cp->commit(five);
  BOOST_TEST(lsn == 5u);
  BOOST_TEST(cp->modified());
  sync_wait(cp->wait_durable(lsn));
  cp->abandon();
  cp.reset();
  rec.reset();

  std::unique_ptr<Recovery> again =
      sync_wait(Recovery::open(f.open_logs(), *f.data, Durability::kSync, f.meta()));
  BOOST_TEST(!again->stats().checkpoint);
  BOOST_TEST(again->stats().commits == 1u);
  BOOST_TEST(again->stats().last_lsn == 5u);
  BufferPool pool2(*f.data, 8);
  pool2.set_store(&again->page_store());
  FakeTree tree2;
  tree2.state = state_with(5);
  std::unique_ptr<Checkpointer> cp2 = sync_wait(again->replay(tree2, pool2));
  BOOST_REQUIRE_EQUAL(tree2.redone.size(), 1u);
  BOOST_TEST(same_ops(tree2.redone[0], ops_of(5)));

  // close: both meta pages describe the last checkpoint; the log is gone.
  sync_wait(cp2->close());
  BOOST_TEST(!std::filesystem::exists(f.dir.file("x.db-wal")));
  for (BlockId id : {BlockId{0}, BlockId{1}}) {
    AlignedBuffer buf(kPage);
    sync_wait(f.data->read_block(id, buf.span()));
    const corobtree::DecodedMeta d = corobtree::decode_meta(id, buf.span());
    BOOST_REQUIRE(d.status == corobtree::MetaStatus::kValid);
    BOOST_TEST(d.meta.checkpoint_lsn == 5u);
    BOOST_TEST((d.meta.state == tree2.state));
  }
}

// A log whose only record a scan cannot use is the first: nothing to finish
// or replay, and the next generation starts after the meta page's checkpoint.
BOOST_DATA_TEST_CASE(a_log_of_nothing_new_starts_afresh, bdata::make(kBackends), backend) {
  Files f(backend);
  {
    RecordLog log(f.open_log(), kDatabaseId + 1, Durability::kSync, 0);  // another database's
    log_txn(log, 1, state_with(1));
    sync_wait(log.sync_all());
    log.close();
  }
  std::unique_ptr<Recovery> rec =
      sync_wait(Recovery::open(f.open_logs(), *f.data, Durability::kSync, f.meta()));
  BOOST_TEST(!rec->stats().checkpoint);
  BOOST_TEST(rec->stats().commits == 0u);
  BufferPool pool(*f.data, 4);
  pool.set_store(&rec->page_store());
  FakeTree tree;
  std::unique_ptr<Checkpointer> cp = sync_wait(rec->replay(tree, pool));
  BOOST_TEST(tree.redone.empty());
  BOOST_TEST(cp->checkpoints() == 0u);
  BOOST_TEST(f.meta().sequence == 1u);  // nothing written
  BOOST_TEST(cp->last_lsn() == 0u);
}

// Two logs (a background checkpoint's crash): NAME-wal holds transactions
// 1-2, their images and the cut's checkpoint record; NAME-wal2, the next
// generation (base 2), transactions 3 and 4, while the copy into the data
// file had not finished (the meta page still says 0). Recovery finishes the
// checkpoint from the older log, then replays the newer one.
BOOST_DATA_TEST_CASE(a_crash_during_a_background_copy_recovers_from_both_logs,
                     bdata::make(kBackends), backend) {
  Files f(backend);
  const CommitState checkpointed = state_with(2);
  {
    RecordLog older(f.open_log("x.db-wal"), kDatabaseId, Durability::kSync, 0);
    log_txn(older, 1, state_with(1));
    log_image(older, 5, 1);
    log_txn(older, 2, checkpointed);
    log_image(older, 6, 2);
    log_checkpoint(older, checkpointed);
    sync_wait(older.sync_all());
    older.close();
    RecordLog newer(f.open_log("x.db-wal2"), kDatabaseId, Durability::kSync, 2);
    log_txn(newer, 3, state_with(3));
    log_image(newer, 7, 3);  // a later generation's image: not the checkpoint's
    log_txn(newer, 4, state_with(4));
    sync_wait(newer.sync_all());
    newer.close();
  }
  std::unique_ptr<Recovery> rec =
      sync_wait(Recovery::open(f.open_logs(), *f.data, Durability::kSync, f.meta()));
  BOOST_TEST(rec->stats().checkpoint);
  BOOST_TEST(rec->stats().checkpoint_lsn == 2u);
  BOOST_TEST(rec->stats().pages == 2u);
  BOOST_TEST(rec->stats().commits == 2u);
  BOOST_TEST(rec->stats().last_lsn == 4u);
  BOOST_TEST(f.page_is(5, 1));
  BOOST_TEST(f.page_is(6, 2));
  BOOST_TEST(f.page_is(7, 0));
  BOOST_TEST(f.meta().checkpoint_lsn == 2u);
  BufferPool pool(*f.data, 8);
  pool.set_store(&rec->page_store());
  FakeTree tree;
  std::unique_ptr<Checkpointer> cp = sync_wait(rec->replay(tree, pool));
  BOOST_REQUIRE_EQUAL(tree.redone.size(), 2u);
  BOOST_TEST(same_ops(tree.redone[0], ops_of(3)));
  BOOST_TEST(same_ops(tree.redone[1], ops_of(4)));
  BOOST_TEST(f.meta().checkpoint_lsn == 4u);

  // Cut, commit into the other log while the cut is not copied, crash: the
  // next open finishes that checkpoint and replays the commit after it.
  tree.state = state_with(5);
  const WriteBatch five = batch_of(5);
  sync_wait(cp->wait_durable(cp->commit(five)));
  BOOST_TEST(sync_wait(cp->cut()));
  BOOST_TEST(cp->copy_pending());
  tree.state = state_with(6);
  const WriteBatch six = batch_of(6);
  sync_wait(cp->wait_durable(cp->commit(six)));
  BOOST_TEST(f.meta().checkpoint_lsn == 4u);  // not copied
  cp->abandon();
  cp.reset();
  rec.reset();
  std::unique_ptr<Recovery> again =
      sync_wait(Recovery::open(f.open_logs(), *f.data, Durability::kSync, f.meta()));
  BOOST_TEST(again->stats().checkpoint);
  BOOST_TEST(again->stats().checkpoint_lsn == 5u);
  BOOST_TEST(again->stats().commits == 1u);
  BOOST_TEST(again->stats().last_lsn == 6u);
  BOOST_TEST((f.meta().state == state_with(5)));
  BufferPool pool2(*f.data, 8);
  pool2.set_store(&again->page_store());
  FakeTree tree2;
  tree2.state = state_with(6);
  std::unique_ptr<Checkpointer> cp2 = sync_wait(again->replay(tree2, pool2));
  BOOST_REQUIRE_EQUAL(tree2.redone.size(), 1u);
  BOOST_TEST(same_ops(tree2.redone[0], ops_of(6)));
  sync_wait(cp2->close());
  BOOST_TEST(!std::filesystem::exists(f.dir.file("x.db-wal")));
  BOOST_TEST(!std::filesystem::exists(f.dir.file("x.db-wal2")));
}

// A second log that does not follow on from the checkpoint (its base and
// commits are far ahead: damage or a crafted file) is ignored; a second log
// that is another database's holds nothing.
BOOST_DATA_TEST_CASE(a_second_log_that_does_not_follow_on_is_ignored, bdata::make(kBackends),
                     backend) {
  Files f(backend);
  {
    RecordLog first(f.open_log("x.db-wal"), kDatabaseId, Durability::kSync, 0);
    log_txn(first, 1, state_with(1));
    sync_wait(first.sync_all());
    first.close();
    RecordLog second(f.open_log("x.db-wal2"), kDatabaseId, Durability::kSync, 100);
    log_txn(second, 101, state_with(101));
    sync_wait(second.sync_all());
    second.close();
  }
  std::unique_ptr<Recovery> rec =
      sync_wait(Recovery::open(f.open_logs(), *f.data, Durability::kSync, f.meta()));
  BOOST_TEST(!rec->stats().checkpoint);
  BOOST_TEST(rec->stats().commits == 1u);
  BOOST_TEST(rec->stats().last_lsn == 1u);
}

// A transaction whose operations are damaged though every CRC verifies (a
// bug, not a torn write): the open fails with kCorruption naming the log.
BOOST_DATA_TEST_CASE(a_damaged_operations_payload_is_corruption, bdata::make(kBackends), backend) {
  TempDir dir;
  const std::string path = dir.file("bad.db");
  corobtree::Options o;
  o.backend = backend;
  {
    BlockingDatabase db = BlockingDatabase::open(path, o);
    db.put("a", "1");
    db.close();
  }
  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), {});
  BOOST_REQUIRE(file.size() >= 2 * corobtree::kDefaultPageSize);
  Meta meta;
  for (BlockId id : {BlockId{0}, BlockId{1}}) {
    std::vector<std::byte> block(corobtree::kDefaultPageSize);
    std::memcpy(block.data(), file.data() + id * block.size(), block.size());
    const corobtree::DecodedMeta d = corobtree::decode_meta(id, block);
    BOOST_REQUIRE(d.status == corobtree::MetaStatus::kValid);
    if (d.meta.sequence >= meta.sequence) meta = d.meta;
  }
  {
    corobtree::DiskOptions lo = disk_options(backend);
    lo.page_size = corobtree::kDefaultPageSize;
    RecordLog log(DiskManager::open(path + "-wal", lo), meta.database_id, Durability::kSync,
                  meta.checkpoint_lsn);
    // A put whose key runs past the end of the payload.
    std::vector<std::byte> ops(corobtree::OpLayout::kSize + 4);
    corobtree::OpLayout::Kind::set(ops.data(), 1);
    corobtree::OpLayout::KeyLength::set(ops.data(), 100);
    corobtree::OpLayout::ValueLength::set(ops.data(), 1);
    log.append(TxnRecord::kOperations, meta.checkpoint_lsn + 1, 0, ops);
    std::byte payload[corobtree::CommitRecord::kSize];
    corobtree::encode_commit_record(meta.state, payload);
    log.append_commit(TxnRecord::kCommit, payload);
    sync_wait(log.sync_all());
    log.close();
  }
  try {
    BlockingDatabase db = BlockingDatabase::open(path, o);
    BOOST_FAIL("a damaged transaction was replayed");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == ErrorCode::kCorruption), e.what());
    BOOST_TEST(std::string(e.what()).find(path + "-wal") != std::string::npos, e.what());
    BOOST_TEST(e.path() == path + "-wal");
  }
}

namespace {

corobtree::Options sweep_options(IoBackend backend) {
  corobtree::Options o;
  o.backend = backend;
  o.page_size = 1024;
  o.pool_pages = 16;
  o.wal_checkpoint_bytes = std::uint64_t{1} << 40;  // only the explicit checkpoint
  return o;
}

std::string key_of(int i) { return "key" + std::to_string(100000 + i); }

void fill(BlockingDatabase& db, int n) {
  for (int i = 0; i < n; ++i) db.put(key_of(i), std::string(60, static_cast<char>('a' + i % 26)));
}

}  // namespace

// A power loss at points spread over a checkpoint of 300 commits: the next
// open holds every key; where the images and the checkpoint record were
// durable, it finished the checkpoint from them.
BOOST_DATA_TEST_CASE(a_power_loss_during_a_checkpoint, bdata::make(kBackends), backend) {
  const std::uint64_t seed = corobtree::test::test_seed("checkpoint power loss");
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string path = dir.file("sweep.db");
  constexpr int kKeys = 300;
  const auto remove_db = [&] {
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-wal2");
  };
  std::uint64_t total = 0;
  {
    auto plan = std::make_shared<corobtree::test::FaultPlan>(seed);
    corobtree::Options o = sweep_options(backend);
    o.wrap_disk = plan->wrapper();
    BlockingDatabase db = BlockingDatabase::open(path, o);
    fill(db, kKeys);
    const std::uint64_t before = plan->ops();
    db.checkpoint();
    total = plan->ops() - before;
  }
  BOOST_REQUIRE(total > 4u);
  const int points = corobtree::test::scaled(40, 12);
  int finished = 0;
  for (int p = 0; p < points; ++p) {
    const std::uint64_t at =
        total * static_cast<std::uint64_t>(p) / static_cast<std::uint64_t>(points);
    remove_db();
    auto plan = std::make_shared<corobtree::test::FaultPlan>(seed + at);
    {
      corobtree::Options o = sweep_options(backend);
      o.wrap_disk = plan->wrapper();
      BlockingDatabase db = BlockingDatabase::open(path, o);
      fill(db, kKeys);
      plan->crash_at = plan->ops() + at;
      try {
        db.checkpoint();
      } catch (const Error&) {
      }
    }  // dropped without close: the crash
    plan->power_loss();
    BlockingDatabase db = BlockingDatabase::open(path, sweep_options(backend));
    BOOST_REQUIRE_MESSAGE(db.count() == static_cast<std::uint64_t>(kKeys),
                          "crash at op " << at << " of " << total << ": " << db.count() << " keys");
    BOOST_REQUIRE_MESSAGE(db.validate().ok(), "crash at op " << at << " of " << total);
    BOOST_REQUIRE(db.get(key_of(kKeys - 1)) == std::optional<std::string>(std::string(
                                                   60, static_cast<char>('a' + (kKeys - 1) % 26))));
    if (db.stats().recovery.checkpoint) ++finished;
    db.close();
  }
  BOOST_TEST_MESSAGE(corobtree::backend_name(backend) << ": " << finished << " of " << points
                                                      << " crashes left a checkpoint to finish");
  BOOST_TEST(finished > 0);
}
