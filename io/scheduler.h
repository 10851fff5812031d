// Scheduler: the per-thread run queue that drives coroutines to completion.
//
// Each thread has one Scheduler (Scheduler::current()). It holds
//  * a ready queue of coroutines to resume (AsyncMutex, Event, ... post their
//    waiters here instead of resuming them inline, so hand-offs never nest
//    stacks), and
//  * the I/O sources (EventLoops) created on this thread.
// sync_wait() calls run_turn() until its task is done. A turn first resumes
// every ready coroutine; when none is ready it polls the I/O sources, blocking
// in the kernel when exactly one source has operations in flight. If nothing is
// ready and no I/O is in flight the awaited task can never finish, and
// run_turn() throws Error(kDeadlock).
//
// Early submission: a batch of resumptions (the ready queue here, or the
// completions a poll dispatches) can run for a long time, e.g. 60 B+tree
// lookups of several microseconds each. So that the reads they queue reach the
// device while the batch still runs, the sources' queued operations are handed
// to the kernel (IoSource::submit(), no waiting) after every
// resumes_per_submit() resumptions; 0 turns this off, and then nothing is
// submitted between polls.
//
// Thread-safety: none; a Scheduler is only touched by its own thread.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace corobtree {

// Something that completes operations and resumes their coroutines.
class IoSource {
 public:
  virtual ~IoSource() = default;
  // Operations submitted or queued and not yet completed.
  virtual std::size_t pending() const noexcept = 0;
  // Submits queued work and dispatches completions. With block == true waits
  // for at least one completion. Returns the number of completions dispatched.
  virtual std::size_t poll(bool block) = 0;
  // Hands queued work to the kernel without waiting and without resuming any
  // coroutine (so it is safe between two resumptions of a batch). Returns the
  // number of operations submitted.
  virtual std::size_t submit() { return 0; }
};

class Scheduler {
 public:
  // Cold lookups at 64 tasks (perf/cold_bench, one read per ~5 us of CPU):
  // 2 and 4 keep the device busiest (+35-45% lookups/s over 0); 8 gains about
  // half that, 16 little. 1 costs a syscall per resumption for no more.
  static constexpr std::size_t kDefaultResumesPerSubmit = 4;

  static Scheduler& current() noexcept;

  // Queues h to be resumed on a later turn of this thread.
  void post(std::coroutine_handle<> h) { ready_.push_back(h); }
  std::size_t ready_count() const noexcept { return ready_.size(); }

  // Resumes ready coroutines and otherwise waits for I/O. Throws Error(kDeadlock)
  // when there is nothing that could ever make progress.
  void run_turn();
  // Resumes everything that is ready now; returns how many were resumed.
  std::size_t run_ready();
  // Hands queued submissions to the kernel without waiting (sync_wait calls
  // this before returning, so background writes do not sit in a queue).
  void flush_submissions();

  // Resumptions between early submissions (see the preamble); 0 = never.
  std::size_t resumes_per_submit() const noexcept { return resumes_per_submit_; }
  void set_resumes_per_submit(std::size_t n) noexcept { resumes_per_submit_ = n; }
  // Submits every source's queued work without waiting or resuming anything.
  void submit_sources();

  void add_source(IoSource* source);
  void remove_source(IoSource* source) noexcept;

  std::uint64_t turns() const noexcept { return turns_; }

  // Explains a wait that only another task can end (e.g. "all frames are
  // pinned"); a deadlock error lists the reasons still noted. Keyed by owner.
  void note_waiting(const void* owner, std::string reason);
  void clear_waiting(const void* owner) noexcept;

 private:
  Scheduler() = default;

  std::deque<std::coroutine_handle<>> ready_;
  std::vector<IoSource*> sources_;
  std::uint64_t turns_ = 0;
  std::size_t resumes_per_submit_ = kDefaultResumesPerSubmit;
  std::vector<std::pair<const void*, std::string>> wait_reasons_;
};

}  // namespace corobtree
