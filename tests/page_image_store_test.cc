// PageImageStore (engine/log/page_image_store.h) on every backend: a read
// returns the newest image of a page, from the log's memory tail or its file;
// a page without an image (or after the log's reset) is read from the data
// file; a checkpoint's copy writes the newest images into the data file
// (taking clean cached copies from the pool); recovery adopts an index built
// from a scan.
#define BOOST_TEST_MODULE page_image_store
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <corobtree/sync_wait.h>

#include "engine/log/page_image_store.h"
#include "engine/log/record_log.h"
#include "engine/pager/buffer_pool.h"
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"
#include "tests/support/backends.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::AlignedBuffer;
using corobtree::BlockId;
using corobtree::BufferPool;
using corobtree::DiskManager;
using corobtree::Durability;
using corobtree::PageImageStore;
using corobtree::RecordLog;
using corobtree::sync_wait;
using corobtree::test::BackendConfig;

namespace {

constexpr std::uint32_t kPage = 4096;
constexpr std::uint64_t kDatabaseId = 77;
constexpr BlockId kBlocks = 16;

// A page whose bytes all say (id, version).
AlignedBuffer page_of(BlockId id, int version) {
  AlignedBuffer b(kPage);
  for (std::uint32_t i = 0; i < kPage; ++i) {
    b.data()[i] =
        static_cast<std::byte>((id * 31 + static_cast<BlockId>(version) * 7 + i % 13) & 0xff);
  }
  return b;
}

corobtree::Task<corobtree::PageGuard> fetch(BufferPool& pool, BlockId id) {
  corobtree::PageGuard guard = co_await pool.fetch_page(id);
  co_return guard;
}

bool same(const AlignedBuffer& a, const AlignedBuffer& b) {
  return std::memcmp(a.data(), b.data(), kPage) == 0;
}

// A data file of kBlocks pages (version 0), its log and the store over them.
struct Fixture {
  explicit Fixture(const BackendConfig& c) : cfg(c) {
    data = DiskManager::open(dir.file("x.db"), cfg.options(kPage));
    data->allocate_blocks(kBlocks);
    for (BlockId id = 0; id < kBlocks; ++id)
      sync_wait(data->write_block(id, page_of(id, 0).span()));
    sync_wait(data->sync());
    log = std::make_unique<RecordLog>(open_log(), kDatabaseId, Durability::kSync, 0);
    store = std::make_unique<PageImageStore>(*log, *data);
  }
  std::unique_ptr<DiskManager> open_log() const {
    corobtree::DiskOptions o = cfg.options(kPage);
    o.direct_io = false;  // the database's log is always buffered
    return DiskManager::open(dir.file("x.db-wal"), o);
  }
  void write(BlockId id, int version) {
    const AlignedBuffer p = page_of(id, version);
    sync_wait(store->write_page(id, p.span()));
  }
  AlignedBuffer read(BlockId id) {
    AlignedBuffer b(kPage);
    sync_wait(store->read_page(id, b.span()));
    return b;
  }
  AlignedBuffer on_data_file(BlockId id) {
    AlignedBuffer b(kPage);
    sync_wait(data->read_block(id, b.span()));
    return b;
  }

  BackendConfig cfg;
  corobtree::test::TempDir dir;
  std::unique_ptr<DiskManager> data;
  std::unique_ptr<RecordLog> log;
  std::unique_ptr<PageImageStore> store;
};

}  // namespace

BOOST_DATA_TEST_CASE(the_index_returns_the_newest_image, corobtree::test::all_backends(), cfg) {
  Fixture fx(cfg);
  fx.write(5, 1);
  fx.write(5, 2);
  fx.write(7, 1);
  fx.write(5, 3);
  BOOST_TEST(fx.store->pages() == 2u);
  BOOST_TEST(fx.store->images_appended() == 4u);
  BOOST_TEST(same(fx.read(5), page_of(5, 3)));  // from the log's memory tail
  BOOST_TEST(same(fx.read(7), page_of(7, 1)));
  BOOST_TEST(fx.log->stats().reads == 0u);
  sync_wait(fx.log->sync_all());
  BOOST_TEST(same(fx.read(5), page_of(5, 3)));  // from the log file now
  BOOST_TEST(same(fx.read(7), page_of(7, 1)));
  BOOST_TEST(fx.log->stats().reads == 2u);
  // The data file was not touched.
  BOOST_TEST(same(fx.on_data_file(5), page_of(5, 0)));
  BOOST_TEST(same(fx.on_data_file(7), page_of(7, 0)));
}

BOOST_DATA_TEST_CASE(reads_fall_back_to_the_data_file, corobtree::test::all_backends(), cfg) {
  Fixture fx(cfg);
  BOOST_TEST(same(fx.read(3), page_of(3, 0)));
  fx.write(3, 1);
  BOOST_TEST(same(fx.read(3), page_of(3, 1)));
  BOOST_TEST(same(fx.read(4), page_of(4, 0)));
  // A new log generation holds no image: the data file answers again.
  sync_wait(fx.log->sync_all());
  sync_wait(fx.log->reset());
  BOOST_TEST(fx.store->pages() == 0u);
  BOOST_TEST(same(fx.read(3), page_of(3, 0)));
  // Images of the new generation are found again.
  fx.write(3, 2);
  BOOST_TEST(same(fx.read(3), page_of(3, 2)));
  BOOST_TEST(fx.store->pages() == 1u);
  // Each image carries the transaction it belongs to.
  BOOST_TEST(fx.store->next_lsn() == fx.log->last_commit() + 1);
}

// read_pages_into (the pool's read-ahead): a run the log holds none of comes
// from the data file in one read, a run with a logged page page by page, each
// page from where its newest copy is; scattered into buffers in any order.
BOOST_DATA_TEST_CASE(a_scattered_run_reads_each_page_from_its_newest_copy,
                     corobtree::test::all_backends(), cfg) {
  Fixture fx(cfg);
  fx.write(6, 1);
  constexpr std::size_t kRun = 6;
  AlignedBuffer arena(kRun * kPage);
  std::vector<std::byte*> pages(kRun);
  for (std::size_t i = 0; i < kRun; ++i) pages[i] = arena.data() + (kRun - 1 - i) * kPage;
  const std::uint64_t data_reads = fx.data->stats().reads;
  sync_wait(fx.store->read_pages_into(8, kPage, pages));  // 8 .. 13: none logged
  BOOST_TEST(fx.data->stats().reads - data_reads == kRun);
  for (std::size_t i = 0; i < kRun; ++i) {
    BOOST_TEST_CONTEXT("page " << 8 + i) {
      BOOST_TEST(std::memcmp(pages[i], page_of(8 + i, 0).data(), kPage) == 0);
    }
  }
  std::memset(arena.data(), 0, arena.size());
  sync_wait(fx.store->read_pages_into(3, kPage, pages));  // 3 .. 8: 6 is logged
  for (std::size_t i = 0; i < kRun; ++i) {
    BOOST_TEST_CONTEXT("page " << 3 + i) {
      const int version = 3 + i == 6 ? 1 : 0;
      BOOST_TEST(std::memcmp(pages[i], page_of(3 + i, version).data(), kPage) == 0);
    }
  }
}

BOOST_DATA_TEST_CASE(copy_writes_the_newest_images_into_the_data_file,
                     corobtree::test::all_backends(), cfg) {
  Fixture fx(cfg);
  fx.write(2, 1);
  fx.write(9, 1);
  fx.write(2, 2);
  fx.write(12, 4);
  sync_wait(fx.log->sync_all());
  // The pool holds a clean copy of page 9 (read through the store): the copy
  // takes it from there instead of reading the log.
  BufferPool pool(*fx.data, 4);
  pool.set_store(fx.store.get());
  {
    corobtree::PageGuard guard = sync_wait(fetch(pool, 9));
    BOOST_TEST(std::memcmp(guard.data().data(), page_of(9, 1).data(), kPage) == 0);
  }
  const std::uint64_t reads_before = fx.log->stats().reads;
  sync_wait(fx.store->copy_to_data_file(&pool));
  BOOST_TEST(fx.log->stats().reads - reads_before == 2u);  // pages 2 and 12
  for (BlockId id = 0; id < kBlocks; ++id) {
    const int version = id == 2 ? 2 : id == 9 ? 1 : id == 12 ? 4 : 0;
    BOOST_TEST(same(fx.on_data_file(id), page_of(id, version)), "page " << id);
  }
  // Without a pool every image comes from the log.
  fx.write(4, 5);
  sync_wait(fx.store->copy_to_data_file(nullptr));
  BOOST_TEST(same(fx.on_data_file(4), page_of(4, 5)));
}

namespace {

class ImageIndex final : public RecordLog::Visitor {
 public:
  void begin(std::uint64_t) override {}
  bool accept(const RecordLog::Record& r) override {
    if (!PageImageStore::is_image(r, kPage)) return false;
    index[r.page] = r.offset;
    return true;
  }
  PageImageStore::Index index;
};

}  // namespace

// Recovery: the index of a scanned log, adopted by a store over the resumed log.
BOOST_DATA_TEST_CASE(adopts_a_scanned_index, corobtree::test::all_backends(), cfg) {
  Fixture fx(cfg);
  fx.write(1, 1);
  fx.write(6, 1);
  fx.write(1, 2);
  sync_wait(fx.log->sync_all());
  fx.store.reset();
  fx.log->close();
  fx.log.reset();
  std::unique_ptr<DiskManager> file = fx.open_log();
  ImageIndex scan;
  const RecordLog::ScanEnd end = sync_wait(RecordLog::scan(*file, kDatabaseId, scan));
  BOOST_REQUIRE(end.header);
  BOOST_REQUIRE_EQUAL(scan.index.size(), 2u);
  fx.log = sync_wait(RecordLog::resume(std::move(file), kDatabaseId, Durability::kSync, end, 0));
  fx.store = std::make_unique<PageImageStore>(*fx.log, *fx.data);
  fx.store->adopt(std::move(scan.index));
  BOOST_TEST(same(fx.read(1), page_of(1, 2)));
  BOOST_TEST(same(fx.read(6), page_of(6, 1)));
  BOOST_TEST(same(fx.read(2), page_of(2, 0)));
  fx.store->clear();  // a checkpoint copied them: the data file answers
  BOOST_TEST(same(fx.read(1), page_of(1, 0)));
}
