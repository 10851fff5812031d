// Scheduler: the per-thread runtime that drives coroutines to completion.
//
// Each thread has one Scheduler (Scheduler::current()). It holds
//  * the ready queue: coroutines to resume. Everything that wakes a coroutine
//    posts it here (AsyncMutex, Condition, Event, ... and the EventLoop, whose
//    completions only record the result and post the waiter); only the
//    Scheduler resumes, so hand-offs never nest stacks and no waker ever runs
//    code after a resumption that may have destroyed it;
//  * the thread's io_uring ring: one EventLoop, created on first use (loop())
//    and shared by every DiskManager, hence every database, the thread opens.
//    A thread that only uses pread never creates one;
//  * the list of attached loops: the thread's loop plus any private EventLoop
//    a test or tool constructs with its own sizing (see below).
//
// sync_wait() calls run_turn() until its task is done. A turn first resumes
// the coroutines that are ready now; when none is, it polls the loops that
// have operations in flight, blocking in io_uring_enter when only one has (the
// normal case: the thread's loop). If nothing is ready and no I/O is in
// flight the awaited task can never finish, and run_turn() throws
// Error(kDeadlock) listing the reasons noted with note_waiting().
//
// Early submission: a batch of resumptions can run for a long time, e.g. 60
// B+tree lookups of several microseconds each. So that the reads they queue
// reach the device while the batch still runs, the loops' queued operations
// are handed to the kernel (submit_queued_io(): submit-only, no waiting, no
// reaping, no resumption) after every resumes_per_submit() resumptions; 0
// turns this off, and then nothing is submitted between polls.
//
// Private loops: tests and benchmarks may construct an EventLoop of their own
// (a small SQ to exercise the backlog, counters that start at zero). It
// attaches itself to this Scheduler and detaches in its destructor, which a
// resumed coroutine may run. That is safe because the Scheduler never resumes
// a coroutine while it walks the list: polling and submitting run no user
// code, and each walk starts afresh after a resumption. While two loops have
// I/O in flight at once the Scheduler cannot block in both, so it polls them
// without blocking; the thread's loop alone never spins. (There is no I/O
// source interface any more: the EventLoop is the only thing that completes
// operations, and private loops are kept so that tests can size a ring and
// read its counters from zero without disturbing the thread's.)
//
// Thread-safety: none; a Scheduler is only touched by its own thread. In a
// forked child the forking thread's loops are abandoned (never used, never
// waited for: the ring still belongs to the parent) and loop() makes a new one.
#pragma once

#include <coroutine>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace corobtree {

class EventLoop;

class Scheduler {
 public:
  // Cold lookups at 64 tasks (perf/cold_bench, one read per ~5 us of CPU):
  // 2 and 4 keep the device busiest (+35-45% lookups/s over 0); 8 gains about
  // half that, 16 little. 1 costs a syscall per resumption for no more.
  static constexpr std::size_t kDefaultResumesPerSubmit = 4;

  static Scheduler& current() noexcept;
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues h to be resumed on a later turn of this thread.
  void post(std::coroutine_handle<> h) { ready_.push_back(h); }

  // Resumes ready coroutines and otherwise waits for I/O. Throws Error(kDeadlock)
  // when there is nothing that could ever make progress.
  void run_turn();
  // Resumes what was ready when it started (coroutines posted meanwhile wait
  // for the next turn, so I/O is polled between batches); returns how many.
  std::size_t run_ready();
  // Hands every attached loop's queued operations to the kernel without
  // waiting, reaping or resuming anything (between two resumptions, and by
  // sync_wait before it returns, so background writes do not sit in a queue).
  void submit_queued_io();

  // Resumptions between early submissions (see the preamble); 0 = never.
  std::size_t resumes_per_submit() const noexcept { return resumes_per_submit_; }
  void set_resumes_per_submit(std::size_t n) noexcept { resumes_per_submit_ = n; }

  // The thread's io_uring ring, created on first use and kept until the thread
  // exits. Throws Error(kNotSupported, sys_errno = the io_uring_setup errno)
  // when the kernel refuses a ring; the next call tries again.
  EventLoop& loop();
  // The thread's ring if loop() has made one (and not abandoned it after a fork).
  EventLoop* loop_if_created() const noexcept { return thread_loop_.get(); }

  // Explains a wait that only another task can end (e.g. "all frames are
  // pinned"); a deadlock error lists the reasons still noted. Keyed by owner.
  void note_waiting(const void* owner, std::string reason);
  void clear_waiting(const void* owner) noexcept;

 private:
  friend class EventLoop;  // attaches and detaches itself

  Scheduler();
  void attach(EventLoop* loop);
  void detach(EventLoop* loop) noexcept;
  // pthread_atfork child handler: drops the forking thread's loops.
  static void abandon_loops_in_child() noexcept;

  std::deque<std::coroutine_handle<>> ready_;
  std::unique_ptr<EventLoop> thread_loop_;
  std::vector<EventLoop*> loops_;  // attached: thread_loop_ and private loops
  bool walking_loops_ = false;     // debug check: no attach/detach during a walk
  std::size_t resumes_per_submit_ = kDefaultResumesPerSubmit;
  std::vector<std::pair<const void*, std::string>> wait_reasons_;
};

}  // namespace corobtree
