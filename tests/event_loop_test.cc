// EventLoop over io_uring: many operations in flight, one io_uring_enter per
// loop turn, a backlog beyond the SQ size, CQ sizing, short-read resubmission
// and the in-flight counters. Each test makes a private loop (its own sizing,
// counters from zero) beside the thread's; tests/reactor_test.cc covers the
// thread's shared ring.
#define BOOST_TEST_MODULE event_loop
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>
#include "io/aligned_buffer.h"
#include "io/event_loop.h"
#include "tests/support/temp_dir.h"

using corobtree::AlignedBuffer;
using corobtree::EventLoop;
using corobtree::EventLoopOptions;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::when_all;

namespace {

constexpr std::uint32_t kBlock = 4096;

// A file of `blocks` blocks where every byte of block i is (i * 7 + 3) & 0xff.
struct PatternFile {
  corobtree::test::TempDir dir;
  std::string path = dir.file("pattern.dat");
  int fd = -1;
  explicit PatternFile(int blocks) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    BOOST_REQUIRE(fd >= 0);
    std::vector<char> buf(kBlock);
    for (int i = 0; i < blocks; ++i) {
      std::memset(buf.data(), (i * 7 + 3) & 0xff, kBlock);
      BOOST_REQUIRE(::pwrite(fd, buf.data(), kBlock, static_cast<off_t>(i) * kBlock) == kBlock);
    }
  }
  ~PatternFile() { ::close(fd); }
};

bool block_matches(const std::byte* p, int block) {
  for (std::uint32_t j = 0; j < kBlock; ++j) {
    if (static_cast<int>(p[j]) != ((block * 7 + 3) & 0xff)) return false;
  }
  return true;
}

Task<bool> read_and_check(EventLoop& loop, int fd, int block) {
  AlignedBuffer buf(kBlock);
  int res = co_await loop.read(fd, buf.data(), kBlock, static_cast<std::uint64_t>(block) * kBlock);
  if (res != static_cast<int>(kBlock)) co_return false;
  co_return block_matches(buf.data(), block);
}

Task<int> read_at(EventLoop& loop, int fd, std::uint64_t offset, std::uint32_t len) {
  AlignedBuffer buf(len);
  int res = co_await loop.read(fd, buf.data(), len, offset);
  co_return res;
}

Task<int> write_then_fsync(EventLoop& loop, int fd) {
  AlignedBuffer buf(kBlock);
  std::memset(buf.data(), 0x5a, kBlock);
  int res = co_await loop.write(fd, buf.data(), kBlock, 0);
  if (res != static_cast<int>(kBlock)) co_return -1000;
  int sres = co_await loop.fsync(fd, true);
  co_return sres;
}

std::vector<Task<bool>> reads_of(EventLoop& loop, int fd, int count, int blocks) {
  std::vector<Task<bool>> tasks;
  for (int i = 0; i < count; ++i) tasks.push_back(read_and_check(loop, fd, (i * 37) % blocks));
  return tasks;
}

}  // namespace

BOOST_AUTO_TEST_CASE(cq_is_at_least_twice_sq) {
  EventLoopOptions o;
  o.sq_entries = 32;
  o.cq_factor = 1;  // raised to 2
  EventLoop loop(o);
  BOOST_TEST(loop.sq_entries() == 32u);
  BOOST_TEST(loop.cq_entries() >= 2 * loop.sq_entries());
}

// At least 64 reads are in flight at once, each returns the right data, and
// submitting them takes a few io_uring_enter calls, not one per read.
BOOST_AUTO_TEST_CASE(many_reads_in_flight_with_one_enter_per_turn) {
  PatternFile file(256);
  EventLoop loop;
  auto results = sync_wait(when_all(reads_of(loop, file.fd, 128, 256)));
  for (std::size_t i = 0; i < results.size(); ++i) BOOST_TEST(results[i], "read " << i);
  auto st = loop.stats();
  BOOST_TEST(st.max_in_flight >= 64u);
  BOOST_TEST(st.max_in_flight == 128u);
  BOOST_TEST(st.in_flight == 0u);
  BOOST_TEST(st.completed == 128u);
  // All 128 were queued before the first turn, so the first enter submits
  // them all; the rest of the enters only wait for completions.
  BOOST_TEST(st.enters < 128u);
  BOOST_TEST(st.submitted == 128u + st.resubmitted);
  BOOST_TEST_MESSAGE("enters for 128 reads: " << st.enters);
}

// More operations than SQ entries (and than CQ entries) are queued, not failed.
BOOST_AUTO_TEST_CASE(backlog_beyond_the_submission_queue) {
  PatternFile file(64);
  EventLoopOptions o;
  o.sq_entries = 4;  // CQ 8: at most 8 in the kernel at once
  EventLoop loop(o);
  auto results = sync_wait(when_all(reads_of(loop, file.fd, 300, 64)));
  std::size_t good = 0;
  for (bool r : results) good += r ? 1 : 0;
  BOOST_TEST(good == 300u);
  auto st = loop.stats();
  BOOST_TEST(st.backlogged > 0u);
  BOOST_TEST(st.max_in_flight == 300u);
  BOOST_TEST(st.completed == 300u);
}

// A read crossing the end of file comes back short from the kernel; the loop
// resubmits for the remainder, sees EOF and returns the bytes it got.
BOOST_AUTO_TEST_CASE(short_read_is_resubmitted_until_eof) {
  PatternFile file(1);
  EventLoop loop;
  int res = sync_wait(read_at(loop, file.fd, 4000, kBlock));
  BOOST_TEST(res == 96);
  BOOST_TEST(loop.stats().resubmitted >= 1u);
  int past = sync_wait(read_at(loop, file.fd, 8 * kBlock, kBlock));
  BOOST_TEST(past == 0);
}

BOOST_AUTO_TEST_CASE(errors_come_back_as_negative_errno) {
  EventLoop loop;
  int res = sync_wait(read_at(loop, -1, 0, kBlock));
  BOOST_TEST(res == -EBADF);
  BOOST_TEST(loop.stats().in_flight == 0u);
}

BOOST_AUTO_TEST_CASE(write_and_fsync) {
  PatternFile file(1);
  EventLoop loop;
  BOOST_TEST(sync_wait(write_then_fsync(loop, file.fd)) == 0);
  char c = 0;
  BOOST_REQUIRE(::pread(file.fd, &c, 1, 100) == 1);
  BOOST_TEST(c == 0x5a);
}

BOOST_AUTO_TEST_CASE(counters_reset_max_in_flight) {
  PatternFile file(16);
  EventLoop loop;
  auto results = sync_wait(when_all(reads_of(loop, file.fd, 16, 16)));
  BOOST_TEST(loop.stats().max_in_flight == 16u);
  loop.reset_max_in_flight();
  BOOST_TEST(loop.stats().max_in_flight == 0u);
}

// ---- early submission (Scheduler::resumes_per_submit) ---------------------------
// (Appended block: its own includes and helpers.)
#include <memory>

#include "io/event.h"

namespace {

using corobtree::Event;
using corobtree::Scheduler;

// Sets this thread's resumes_per_submit for one test and restores it after.
class ResumesPerSubmit {
 public:
  explicit ResumesPerSubmit(std::size_t n) : saved_(Scheduler::current().resumes_per_submit()) {
    Scheduler::current().set_resumes_per_submit(n);
  }
  ~ResumesPerSubmit() { Scheduler::current().set_resumes_per_submit(saved_); }
  ResumesPerSubmit(const ResumesPerSubmit&) = delete;
  ResumesPerSubmit& operator=(const ResumesPerSubmit&) = delete;

 private:
  std::size_t saved_;
};

Task<bool> read_after_event(Event& go, EventLoop& loop, int fd, int block) {
  co_await go;
  const bool ok = co_await read_and_check(loop, fd, block);
  co_return ok;
}

Task<bool> set_event(Event& go) {
  go.set();
  co_return true;
}

// `waiters` tasks park on one Event, the last task sets it: the Scheduler then
// resumes all of them in one run_ready() batch, each queueing one read.
std::vector<Task<bool>> reads_released_together(Event& go, EventLoop& loop, int fd, int waiters) {
  std::vector<Task<bool>> tasks;
  for (int i = 0; i < waiters; ++i) tasks.push_back(read_after_event(go, loop, fd, i));
  tasks.push_back(set_event(go));
  return tasks;
}

Task<bool> two_reads(EventLoop& loop, int fd, int block) {
  const bool first = co_await read_and_check(loop, fd, block);
  const bool second = co_await read_and_check(loop, fd, block + 1);
  co_return first&& second;
}

// Reads one block; the task with drop == true then destroys the loop, but only
// if every read of this batch has already completed (so nobody is left waiting
// on a dead loop); it reports whether it did.
Task<bool> read_then_maybe_drop(std::unique_ptr<EventLoop>& owner, int fd, int block, bool drop,
                                std::uint64_t batch, bool& dropped) {
  EventLoop& loop = *owner;
  const bool ok = co_await read_and_check(loop, fd, block);
  if (drop && loop.stats().completed == batch) {
    owner.reset();
    dropped = true;
  }
  co_return ok;
}

}  // namespace

// A batch of ready coroutines that each queue a read: the reads go to the
// kernel every resumes_per_submit() resumptions, not only when the batch ends.
BOOST_AUTO_TEST_CASE(ready_batch_submits_every_few_resumptions) {
  PatternFile file(16);
  ResumesPerSubmit every(4);
  EventLoop loop;
  Event go;
  auto results = sync_wait(when_all(reads_released_together(go, loop, file.fd, 16)));
  for (std::size_t i = 0; i < results.size(); ++i) BOOST_TEST(results[i], "task " << i);
  const auto st = loop.stats();
  // After resumptions 4, 8 and 12; the last four go out with the poll that
  // follows the batch.
  BOOST_TEST(st.early_submits == 3u);
  BOOST_TEST(st.submitted == 16u + st.resubmitted);
  BOOST_TEST(st.completed == 16u);
}

BOOST_AUTO_TEST_CASE(early_submission_off_submits_only_when_polled) {
  PatternFile file(64);
  ResumesPerSubmit off(0);
  EventLoop loop;
  Event go;
  auto results = sync_wait(when_all(reads_released_together(go, loop, file.fd, 16)));
  for (bool r : results) BOOST_TEST(r);
  std::vector<Task<bool>> chains;
  for (int i = 0; i < 32; ++i) chains.push_back(two_reads(loop, file.fd, i));
  auto chained = sync_wait(when_all(std::move(chains)));
  for (bool r : chained) BOOST_TEST(r);
  BOOST_TEST(loop.stats().early_submits == 0u);
  BOOST_TEST(loop.stats().completed == 16u + 64u);
}

// Completions dispatched by one poll whose coroutines queue follow-up reads:
// those are submitted during the batch, and every read returns the right data.
BOOST_AUTO_TEST_CASE(completion_batch_submits_follow_up_reads_early) {
  PatternFile file(64);
  ResumesPerSubmit every(4);
  EventLoop loop;
  std::vector<Task<bool>> chains;
  for (int i = 0; i < 32; ++i) chains.push_back(two_reads(loop, file.fd, i));
  auto results = sync_wait(when_all(std::move(chains)));
  for (std::size_t i = 0; i < results.size(); ++i) BOOST_TEST(results[i], "task " << i);
  const auto st = loop.stats();
  BOOST_TEST(st.completed == 64u);
  BOOST_TEST(st.in_flight == 0u);
  // Page-cache reads complete at submission, so the first poll dispatches
  // (nearly) all 32 first reads as one batch.
  BOOST_TEST(st.early_submits >= 1u);
  BOOST_TEST_MESSAGE("early submits: " << st.early_submits << " of " << st.enters << " enters");
}

// A coroutine resumed after its read completed may destroy a (private) loop
// while more of the batch waits in the Scheduler's ready queue. Completions
// only post waiters, so the Scheduler keeps resuming the batch and never
// touches the destroyed loop again (ASan checks). (Before completions went to
// the ready queue the loop itself resumed the batch and had to notice its own
// destruction; the assertions are unchanged.)
BOOST_AUTO_TEST_CASE(loop_destroyed_by_a_coroutine_it_resumed) {
  PatternFile file(8);
  ResumesPerSubmit every(1);
  auto owner = std::make_unique<EventLoop>();
  bool dropped = false;
  std::vector<Task<bool>> tasks;
  for (int i = 0; i < 8; ++i) {
    tasks.push_back(read_then_maybe_drop(owner, file.fd, i, i == 0, 8, dropped));
  }
  auto results = sync_wait(when_all(std::move(tasks)));
  for (bool r : results) BOOST_TEST(r);
  if (!dropped) BOOST_TEST_MESSAGE("reads completed in several batches: loop not dropped");
  BOOST_TEST((owner == nullptr) == dropped);
}
