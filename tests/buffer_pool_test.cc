// BufferPool on every backend: LRU eviction, dirty write-back before reuse,
// hit/miss accounting, shared reads, waiting for a free frame, flush and
// reopen, direct mode (pool size 0), real disk errors, and a randomized
// 64-task workload checked against a model.
#define BOOST_TEST_MODULE buffer_pool
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <map>
#include <random>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/runtime.h>
#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>
#include "engine/pager/buffer_pool.h"
#include "io/aligned_buffer.h"
#include "io/event.h"
#include "tests/support/backends.h"
#include "tests/support/fd_swap.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::AlignedBuffer;
using corobtree::BlockId;
using corobtree::BufferPool;
using corobtree::DiskManager;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::PageGuard;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::when_all;
using corobtree::test::BackendConfig;

namespace {

// A suspension point: resumes on the scheduler's next turn.
struct Yield {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { corobtree::Scheduler::current().post(h); }
  void await_resume() const noexcept {}
};

// A file of `blocks` blocks whose first 8 bytes hold (block id * 1000).
struct Fixture {
  corobtree::test::TempDir dir;
  std::string path = dir.file("pool.db");
  BackendConfig cfg;
  std::unique_ptr<DiskManager> dm;

  Fixture(BackendConfig c, int blocks) : cfg(c) {
    dm = DiskManager::open(path, cfg.options());
    AlignedBuffer buf(dm->page_size());
    for (int i = 0; i < blocks; ++i) {
      BlockId id = dm->allocate_block();
      stamp(buf.data(), id * 1000);
      sync_wait(dm->write_block(id, buf.span()));
    }
  }
  void reopen() {
    dm.reset();
    dm = DiskManager::open(path, cfg.options());
  }
  std::uint64_t on_disk(BlockId id) {
    AlignedBuffer buf(dm->page_size());
    sync_wait(dm->read_block(id, buf.span()));
    return stamp_of(buf.data());
  }
  static void stamp(std::byte* p, std::uint64_t v) { std::memcpy(p, &v, sizeof v); }
  static std::uint64_t stamp_of(const std::byte* p) {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
};

Task<std::uint64_t> read_stamp(BufferPool& pool, BlockId id) {
  PageGuard g = co_await pool.fetch_page(id);
  co_return Fixture::stamp_of(g.data().data());
}

Task<void> write_stamp(BufferPool& pool, BlockId id, std::uint64_t v) {
  PageGuard g = co_await pool.fetch_page(id);
  Fixture::stamp(g.data().data(), v);
  g.mark_dirty();
}

Task<void> touch_all(BufferPool& pool, std::vector<BlockId> ids) {
  for (BlockId id : ids) {
    PageGuard g = co_await pool.fetch_page(id);
  }
}

bool cached(BufferPool& pool, BlockId id) {
  PageGuard g;
  return pool.try_fetch_cached(id, g);
}

Task<void> pin_two_then_release(BufferPool& pool, int& released_at, corobtree::Event& pinned) {
  PageGuard a = co_await pool.fetch_page(0);
  PageGuard b = co_await pool.fetch_page(1);
  pinned.set();
  for (int i = 0; i < 5; ++i) co_await Yield{};
  released_at = 1;
}

Task<std::uint64_t> fetch_when_full(BufferPool& pool, int& released_at, corobtree::Event& pinned) {
  co_await pinned;  // the other task holds both frames now
  PageGuard g = co_await pool.fetch_page(2);
  BOOST_TEST(released_at == 1);  // could only succeed after the release
  co_return Fixture::stamp_of(g.data().data());
}

Task<void> pin_all_and_fetch_more(BufferPool& pool) {
  PageGuard a = co_await pool.fetch_page(0);
  PageGuard b = co_await pool.fetch_page(1);
  PageGuard c = co_await pool.fetch_page(2);  // can never get a frame
}

// One of the 64 randomized workers: increments per-page counters under the
// page latch, yielding while holding it so others interleave.
Task<void> random_worker(BufferPool& pool, std::uint64_t seed, int ops, BlockId pages,
                         std::vector<std::uint64_t>& model) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < ops; ++i) {
    const BlockId id = rng() % pages;
    PageGuard g = co_await pool.fetch_page(id);
    auto latch = co_await g.latch().scoped_lock();
    const std::uint64_t v = Fixture::stamp_of(g.data().data() + 8);
    if (rng() % 4 == 0) co_await Yield{};
    Fixture::stamp(g.data().data() + 8, v + 1);
    g.mark_dirty();
    ++model[id];
  }
}

}  // namespace

BOOST_DATA_TEST_CASE(lru_order_decides_the_victim, bdata::make(corobtree::test::all_backends()),
                     cfg) {
  Fixture fx(cfg, 8);
  BufferPool pool(*fx.dm, 3);
  sync_wait(touch_all(pool, {0, 1, 2, 0}));  // 1 is now least recently used
  sync_wait(touch_all(pool, {3}));
  BOOST_TEST(!cached(pool, 1));
  BOOST_TEST(cached(pool, 0));
  BOOST_TEST(cached(pool, 2));
  BOOST_TEST(cached(pool, 3));
  BOOST_TEST(pool.stats().evictions == 1u);
}

BOOST_DATA_TEST_CASE(dirty_victim_is_written_before_reuse,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 4);
  BufferPool pool(*fx.dm, 2);
  sync_wait(write_stamp(pool, 0, 4242));
  BOOST_TEST(fx.on_disk(0) == 0u);     // still only in memory
  sync_wait(touch_all(pool, {1, 2}));  // evicts 0
  BOOST_TEST(!cached(pool, 0));
  BOOST_TEST(fx.on_disk(0) == 4242u);  // written back, before any close
  BOOST_TEST(pool.stats().dirty_writebacks == 1u);
  BOOST_TEST(sync_wait(read_stamp(pool, 0)) == 4242u);
}

// While a dirty victim's write-back is in flight (io_uring really suspends
// there), a fetch of that page must see the in-memory copy, not the stale one
// on disk, and must cancel the eviction.
BOOST_DATA_TEST_CASE(fetch_during_writeback_sees_the_new_copy,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 4);
  BufferPool pool(*fx.dm, 1);
  sync_wait(write_stamp(pool, 0, 777));  // dirty, unpinned: the only frame
  auto [evicting_fetch, concurrent] = sync_wait(when_all(read_stamp(pool, 1), read_stamp(pool, 0)));
  BOOST_TEST(evicting_fetch == 1000u);
  BOOST_TEST(concurrent == 777u);  // never the stale 0 from disk
  BOOST_TEST(fx.on_disk(0) == 777u);
  BOOST_TEST(pool.stats().pinned == 0u);
}

BOOST_DATA_TEST_CASE(hits_and_misses_are_counted, bdata::make(corobtree::test::all_backends()),
                     cfg) {
  Fixture fx(cfg, 4);
  BufferPool pool(*fx.dm, 4);
  sync_wait(touch_all(pool, {0, 1, 0, 0, 1, 2}));
  auto st = pool.stats();
  BOOST_TEST(st.misses == 3u);
  BOOST_TEST(st.hits == 3u);
  BOOST_TEST(st.disk_reads == 3u);
  BOOST_TEST(st.hit_rate() == 0.5);
  BOOST_TEST(st.pinned == 0u);
  pool.reset_stats();
  BOOST_TEST(pool.stats().hits == 0u);
  BOOST_TEST(pool.stats().disk_reads == 0u);
}

BOOST_DATA_TEST_CASE(concurrent_misses_share_one_read, bdata::make(corobtree::test::all_backends()),
                     cfg) {
  Fixture fx(cfg, 4);
  BufferPool pool(*fx.dm, 4);
  std::vector<Task<std::uint64_t>> tasks;
  for (int i = 0; i < 16; ++i) tasks.push_back(read_stamp(pool, 3));
  auto values = sync_wait(when_all(std::move(tasks)));
  for (auto v : values) BOOST_TEST(v == 3000u);
  BOOST_TEST(pool.stats().disk_reads == 1u);
  BOOST_TEST(fx.dm->stats().reads == 1u);  // setup only wrote
}

// prefetch() reads a run of consecutive pages with one read straight into
// frames that are neither adjacent nor in order (victims of a full pool):
// each page must land in its own frame.
BOOST_DATA_TEST_CASE(prefetch_reads_a_run_into_scattered_frames,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 32);
  BufferPool pool(*fx.dm, 16);
  sync_wait(touch_all(pool, {21, 16, 30, 18, 25, 17, 29, 19, 27, 20, 31, 23, 28, 22, 26, 24}));
  const std::uint64_t reads_before = fx.dm->stats().reads;
  const std::uint32_t started = pool.prefetch(0, 10);
  sync_wait(pool.readahead_drained());
  if (cfg.backend == corobtree::IoBackend::kPread) {
    BOOST_TEST(started == 0u);  // synchronous reads: read-ahead does nothing
    return;
  }
  BOOST_TEST(started == 10u);
  BOOST_TEST(pool.stats().readahead_reads == 10u);
  BOOST_TEST(fx.dm->stats().reads - reads_before == 10u);
  const std::uint64_t misses = pool.stats().misses;
  for (BlockId id = 0; id < 10; ++id) {
    BOOST_TEST_CONTEXT("page " << id) {
      BOOST_TEST(cached(pool, id));
      BOOST_TEST(sync_wait(read_stamp(pool, id)) == id * 1000);
    }
  }
  BOOST_TEST(pool.stats().misses == misses);
  BOOST_TEST(fx.dm->stats().reads - reads_before == 10u);
}

BOOST_DATA_TEST_CASE(fetch_waits_for_a_pinned_frame_then_succeeds,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 4);
  BufferPool pool(*fx.dm, 2);
  int released_at = 0;
  corobtree::Event pinned;
  auto [unused, value] = sync_wait(when_all(pin_two_then_release(pool, released_at, pinned),
                                            fetch_when_full(pool, released_at, pinned)));
  (void)unused;
  BOOST_TEST(value == 2000u);
  BOOST_TEST(pool.stats().free_frame_waits >= 1u);
}

BOOST_DATA_TEST_CASE(a_fetch_that_can_never_succeed_fails_clearly,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 4);
  BufferPool pool(*fx.dm, 2);
  BOOST_CHECK_EXCEPTION(sync_wait(pin_all_and_fetch_more(pool)), Error, [](const Error& e) {
    return e.code() == ErrorCode::kDeadlock &&
           std::string(e.what()).find("frames are pinned") != std::string::npos;
  });
  BOOST_TEST(pool.stats().pinned == 0u);                // the guards were released on unwinding
  BOOST_TEST(sync_wait(read_stamp(pool, 2)) == 2000u);  // and the pool still works
}

namespace {

// On a Runtime worker (a database's engine thread is one) another thread may
// post at any time, so an idle worker sleeps instead of reporting a deadlock;
// a frame wait is one that only the worker's own tasks can end, so the pool
// still fails it clearly rather than hang.
Task<std::string> pin_all_on_a_worker(corobtree::Runtime* rt, Fixture* fx) {
  co_await rt->schedule();
  fx->reopen();  // the disk (and its ring) belong to this worker now
  std::string error;
  {
    BufferPool pool(*fx->dm, 2);
    try {
      co_await pin_all_and_fetch_more(pool);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kDeadlock) error = e.what();
    }
  }
  fx->dm.reset();
  co_return error;
}

}  // namespace

BOOST_DATA_TEST_CASE(a_fetch_that_can_never_succeed_fails_on_a_worker_too,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 4);
  corobtree::Runtime rt(1);
  const std::string error = sync_wait(pin_all_on_a_worker(&rt, &fx));
  BOOST_TEST_MESSAGE(error);
  BOOST_TEST(error.find("frames are pinned") != std::string::npos);
}

BOOST_DATA_TEST_CASE(close_flushes_and_reopen_reads_back,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 16);
  {
    BufferPool pool(*fx.dm, 4);
    for (BlockId id = 0; id < 16; ++id) sync_wait(write_stamp(pool, id, 7000 + id));
    sync_wait(pool.close());
    BOOST_CHECK_EXCEPTION(sync_wait(read_stamp(pool, 0)), Error,
                          [](const Error& e) { return e.code() == ErrorCode::kClosed; });
  }
  fx.reopen();
  BufferPool pool(*fx.dm, 4);
  for (BlockId id = 0; id < 16; ++id) BOOST_TEST(sync_wait(read_stamp(pool, id)) == 7000 + id);
}

BOOST_DATA_TEST_CASE(new_flush_and_delete_page, bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 2);
  BufferPool pool(*fx.dm, 4);
  PageGuard g = sync_wait(pool.new_page());
  const BlockId id = g.page_id();
  BOOST_TEST(id == 2u);
  BOOST_TEST(g.is_dirty());
  Fixture::stamp(g.data().data(), 99);
  g.release();
  sync_wait(pool.flush_page(id));
  BOOST_TEST(fx.on_disk(id) == 99u);
  PageGuard again = sync_wait(pool.fetch_page(id));
  PageGuard second = sync_wait(pool.fetch_page(id));
  BOOST_CHECK_THROW(sync_wait(pool.delete_page(std::move(second))), Error);  // pinned twice
  sync_wait(pool.delete_page(std::move(again)));
  BOOST_TEST(!cached(pool, id));
  BOOST_TEST(pool.stats().pinned == 0u);
}

// Pool size 0: the seed's "without buffer pool" baseline.
BOOST_DATA_TEST_CASE(direct_mode_reads_and_writes_every_access,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  Fixture fx(cfg, 8);
  BufferPool pool(*fx.dm, 0);
  BOOST_TEST(pool.direct());
  sync_wait(touch_all(pool, {0, 1, 0, 0}));
  BOOST_TEST(pool.stats().disk_reads == 4u);
  BOOST_TEST(pool.stats().hits == 0u);
  sync_wait(write_stamp(pool, 5, 555));  // last unpin of a dirty page writes it
  sync_wait(pool.flush_all());           // waits for a background write-back, if any
  BOOST_TEST(fx.on_disk(5) == 555u);
  BOOST_TEST(pool.stats().disk_writes == 1u);
  // Two pins of one page share one frame: a change through one is seen by the other.
  PageGuard a = sync_wait(pool.fetch_page(6));
  PageGuard b = sync_wait(pool.fetch_page(6));
  Fixture::stamp(a.data().data(), 66);
  BOOST_TEST(Fixture::stamp_of(b.data().data()) == 66u);
}

BOOST_DATA_TEST_CASE(read_error_reaches_the_caller_and_the_pool_recovers,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  if (cfg.direct_io) return;  // the fd swap targets cannot be opened O_DIRECT
  Fixture fx(cfg, 4);
  for (std::size_t frames : {std::size_t{2}, std::size_t{0}}) {
    BufferPool pool(*fx.dm, frames);
    {
      auto swap = corobtree::test::FdSwap::eio_on_read(fx.dm->native_handle());
      BOOST_CHECK_EXCEPTION(sync_wait(read_stamp(pool, 1)), Error, [](const Error& e) {
        return e.code() == ErrorCode::kIoError && e.block() == 1u;
      });
    }
    BOOST_TEST(pool.stats().pinned == 0u);
    BOOST_TEST(sync_wait(read_stamp(pool, 1)) == 1000u);
  }
}

BOOST_DATA_TEST_CASE(writeback_error_reaches_the_caller_and_nothing_is_lost,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  if (cfg.direct_io) return;
  Fixture fx(cfg, 4);
  BufferPool pool(*fx.dm, 1);
  sync_wait(write_stamp(pool, 0, 1234));
  {
    auto swap = corobtree::test::FdSwap::enospc_on_write(fx.dm->native_handle());
    BOOST_CHECK_EXCEPTION(sync_wait(read_stamp(pool, 1)), Error, [](const Error& e) {
      return e.code() == ErrorCode::kNoSpace && e.block() == 0u;
    });
  }
  BOOST_TEST(cached(pool, 0));                          // the dirty page was kept
  BOOST_TEST(sync_wait(read_stamp(pool, 1)) == 1000u);  // now the write-back succeeds
  BOOST_TEST(fx.on_disk(0) == 1234u);

  // Direct mode: the write at unpin fails (in the background on io_uring);
  // the error reaches the next pool call, the page stays cached and dirty,
  // and a later flush writes it.
  BufferPool direct(*fx.dm, 0);
  {
    auto swap = corobtree::test::FdSwap::enospc_on_write(fx.dm->native_handle());
    sync_wait(write_stamp(direct, 2, 2222));
    BOOST_CHECK_EXCEPTION(sync_wait(direct.flush_all()), Error,
                          [](const Error& e) { return e.code() == ErrorCode::kNoSpace; });
  }
  BOOST_TEST(sync_wait(read_stamp(direct, 2)) == 2222u);
  sync_wait(direct.flush_all());
  BOOST_TEST(fx.on_disk(2) == 2222u);
}

BOOST_DATA_TEST_CASE(randomized_64_tasks_against_a_model,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  const auto seed = corobtree::test::test_seed("buffer pool 64 tasks " + cfg.name());
  const BlockId pages = 96;
  Fixture fx(cfg, static_cast<int>(pages));
  std::vector<std::uint64_t> model(pages, 0);
  for (std::size_t frames : {std::size_t{16}, std::size_t{0}, std::size_t{128}}) {
    {
      BufferPool pool(*fx.dm, frames);
      std::vector<Task<void>> workers;
      for (int t = 0; t < 64; ++t) {
        workers.push_back(random_worker(pool, seed + static_cast<std::uint64_t>(t) * 7919 + frames,
                                        150, pages, model));
      }
      sync_wait(when_all(std::move(workers)));
      BOOST_TEST(pool.stats().pinned == 0u);
      for (BlockId id = 0; id < pages; ++id) {
        std::uint64_t got = 0;
        {
          PageGuard g = sync_wait(pool.fetch_page(id));
          got = Fixture::stamp_of(g.data().data() + 8);
        }
        BOOST_REQUIRE_MESSAGE(got == model[id], "page " << id << " frames " << frames << ": " << got
                                                        << " != " << model[id] << " (seed " << seed
                                                        << ")");
      }
      sync_wait(pool.close());
    }
    fx.reopen();
    AlignedBuffer buf(fx.dm->page_size());
    for (BlockId id = 0; id < pages; ++id) {
      sync_wait(fx.dm->read_block(id, buf.span()));
      BOOST_REQUIRE_MESSAGE(Fixture::stamp_of(buf.data() + 8) == model[id],
                            "after reopen: page " << id << " (seed " << seed << ")");
    }
  }
}
