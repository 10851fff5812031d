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
// Cross-thread wake-ups: every Scheduler has an inbox (detail::Inbox), a
// mutex-protected vector of coroutine handles that any thread may push to.
// The owner moves it into the ready queue at the start of each turn (one
// relaxed-cost atomic load when it is empty). A coroutine always resumes on
// its home thread: whoever releases a waiter of another thread (AsyncMutex,
// AsyncSharedMutex, Event, Condition) posts it to that thread's inbox with
// detail::post_home() and touches nothing of the waiter's afterwards; a waiter
// of the releasing thread itself goes to the ready queue as before.
//
// Sleeping and waking: a thread that may receive posts from others (another
// Scheduler exists in the process, or it is a Runtime worker) never throws
// kDeadlock when idle; it sleeps until a post arrives. Before any such sleep
// it stays awake for kSpinBeforeSleep (yielding, and reaping its ring without
// blocking when I/O is in flight), since the post or completion usually comes
// sooner than a sleeping thread wakes. With I/O in flight it then
// sleeps in io_uring_enter as before, with an IORING_OP_POLL_ADD on the
// inbox's eventfd armed in the ring (re-armed only after it fired), so a post
// ends the wait. With nothing in flight (or no ring: the pread backend) it
// sleeps in poll(2) on the eventfd. The handshake is Dekker-style with
// sequentially consistent atomics: the sleeper sets `sleeping` and then looks
// at `nonempty`; a poster sets `nonempty` and then exchanges `sleeping` to
// false, writing the eventfd if it was set. So a post is never lost and the
// eventfd is written at most once per sleep. While only one Scheduler exists,
// nothing can post, so an idle thread throws kDeadlock exactly as before (and
// no eventfd is ever made).
//
// Lifetime: inboxes are immortal. A Scheduler closes its inbox when its
// thread exits (the eventfd is closed, queued handles are dropped) and posting
// to a closed inbox returns false: the primitives then skip that waiter (a
// mutex hands ownership to the next one); its coroutine never runs. The
// inbox object itself is never freed (about 100 bytes per thread that ever
// used corobtree), so a poster holding a stale home never touches freed
// memory.
//
// Driven from outside: while an ExternalLoop (corobtree/external_loop.h)
// lives on the thread, an outside event loop runs the turns instead of
// sync_wait: it watches the inbox's eventfd, which every attached ring also
// signals on each completion (io_uring_register_eventfd), and declares its
// waits with the same handshake as a sleep (io/external_loop.cc). A local
// post made outside the loop's run()/prepare_wait() ends a declared wait too
// (post_local writes the eventfd then): the outside loop may run code of
// this thread between its turns.
//
// Thread-safety: the ready queue, the loops and everything else here belong
// to the Scheduler's own thread; only post(), detail::post_home() and the
// inbox may be used from other threads. In a forked child the forking
// thread's loops are abandoned (never used, never waited for: the ring still
// belongs to the parent) and loop() makes a new one.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace corobtree {

class EventLoop;
class ExternalLoop;
class Scheduler;

namespace detail {

class Inbox;  // a Scheduler's cross-thread queue (scheduler.cc)

// The calling thread's inbox: a waiter records it as its home.
Inbox* this_thread_home() noexcept;
// Posts h to `home`: onto the ready queue when `home` is the calling thread's,
// else into that thread's inbox, waking it. Returns false (and does nothing)
// when the home thread has exited. After a cross-thread post the caller must
// touch nothing of h's coroutine.
bool post_home(Inbox* home, std::coroutine_handle<> h) noexcept;
// co_await HopHome(home): continues on `home`'s thread (at once when already
// there). If that thread has exited, the coroutine is never resumed.
class HopHome {
 public:
  explicit HopHome(Inbox* home) noexcept : home_(home) {}
  bool await_ready() const noexcept { return this_thread_home() == home_; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { (void)post_home(home_, h); }
  void await_resume() const noexcept {}

 private:
  Inbox* home_;
};
// Makes the home thread look at its inbox (e.g. to see a stop request)
// without posting anything.
void wake_home(Inbox* home) noexcept;

}  // namespace detail

class Scheduler {
 public:
  // Cold lookups at 64 tasks (perf/cold_bench, one read per ~5 us of CPU):
  // 2 and 4 keep the device busiest (+35-45% lookups/s over 0); 8 gains about
  // half that, 16 little. 1 costs a syscall per resumption for no more.
  static constexpr std::size_t kDefaultResumesPerSubmit = 4;
  // How long a thread that may receive posts stays awake (yielding; reaping
  // its ring without blocking when I/O is in flight) before it sleeps on its
  // eventfd or in io_uring_enter: a hop's answer, or the next completion of
  // a busy ring, usually comes sooner than a sleeping thread wakes.
  static constexpr std::chrono::microseconds kSpinBeforeSleep{200};

  static Scheduler& current() noexcept;
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues h to be resumed on a later turn of this Scheduler's thread. From
  // another thread it goes through the inbox and wakes the thread.
  // REQUIRES (from another thread): this Scheduler's thread has not exited;
  // when that is not sure, use detail::post_home(home(), h).
  void post(std::coroutine_handle<> h);
  // REQUIRES: called on this Scheduler's thread. While an ExternalLoop drives
  // the thread and the thread is outside ExternalLoop::run()/prepare_wait()
  // (an initiating function, a plain handler of the outside loop), it also
  // wakes the inbox, so the outside loop's wait on the eventfd ends (or
  // prepare_wait() returns false): the one flag test is all the common path pays.
  void post_local(std::coroutine_handle<> h) {
    ready_.push_back(h);
    if (wake_on_local_post_) [[unlikely]]
      wake_external_loop();
  }
  // This thread's inbox (stays valid forever; see the preamble).
  detail::Inbox* home() const noexcept { return inbox_; }

  // Resumes ready coroutines and otherwise waits for I/O or a post from
  // another thread. Throws Error(kDeadlock) when there is nothing that could
  // ever make progress (nothing ready, no I/O in flight, and no other
  // Scheduler in the process that could post; never on a Runtime worker).
  void run_turn();
  // Nothing ready, nothing in the inbox, no I/O in flight on any loop.
  bool idle() const noexcept;
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
  // With `break_wait`, the wait is one that only a task of this thread can
  // end: when the thread finds itself idle (nothing ready, nothing in its
  // inbox, no I/O in flight) it calls break_wait (which must wake the
  // waiters with an error) instead of sleeping, even where other threads
  // could post to it (a Runtime worker, e.g. a database's engine thread).
  void note_waiting(const void* owner, std::string reason,
                    std::function<void()> break_wait = nullptr);
  void clear_waiting(const void* owner) noexcept;

  // Schedulers alive in the process (threads that used corobtree and have not exited).
  static std::size_t live_count() noexcept;

  // While a LongWait lives on this thread (a call that waits for an fsync
  // elsewhere, e.g. a durable commit on a database's engine thread), the
  // thread sleeps as soon as it is idle instead of staying awake
  // kSpinBeforeSleep first: the answer is a disk flush away, and the spin
  // would only burn the CPU the flush's own threads need.
  // REQUIRES: created and destroyed on the same thread.
  class LongWait {
   public:
    explicit LongWait(bool on) noexcept : s_(on ? &current() : nullptr) {
      if (s_ != nullptr) ++s_->long_waits_;
    }
    ~LongWait() {
      if (s_ != nullptr) --s_->long_waits_;
    }
    LongWait(const LongWait&) = delete;
    LongWait& operator=(const LongWait&) = delete;

   private:
    Scheduler* s_;
  };

  // --- used by sync_wait and Runtime (io/runtime.cc) ---
  // True while this thread drives coroutines (inside sync_wait, or a Runtime
  // worker): sync_wait then throws instead of nesting the loop.
  bool driving() const noexcept { return driving_; }
  void set_driving(bool d) noexcept { driving_ = d; }
  // A worker never throws kDeadlock: when idle it sleeps until a post.
  void set_worker(bool w) noexcept { worker_ = w; }
  // Closes the inbox if nothing is queued in it (a stopping worker's last
  // step; later posts fail). Returns false when something is queued.
  bool close_inbox_if_empty() noexcept;
  // sync_wait's root: the continuation of the awaited task. When the task
  // finishes (on any thread) it hops back here and marks the wait done.
  std::coroutine_handle<> sync_root();
  bool take_sync_done() noexcept { return std::exchange(sync_done_, false); }

 private:
  friend class EventLoop;     // attaches and detaches itself
  friend class ExternalLoop;  // drives the thread from an outside event loop

  Scheduler();
  void attach(EventLoop* loop);
  void detach(EventLoop* loop) noexcept;
  // pthread_atfork child handler: drops the forking thread's loops.
  static void abandon_loops_in_child() noexcept;

  // Moves the inbox's handles to the ready queue.
  void drain_inbox();
  bool inbox_maybe_nonempty() const noexcept;
  // The inbox's eventfd, made on first need; -1 when the kernel refuses one.
  int inbox_eventfd() noexcept;
  // Prepares to sleep: false when a post arrived meanwhile (do not sleep).
  bool begin_sleep();
  void end_sleep(bool eventfd_fired) noexcept;
  // Sleeps in poll(2) on the inbox's eventfd (nothing in flight).
  void sleep_on_inbox();

  // Makes the ExternalLoop's fd readable (or its next prepare_wait() false).
  void wake_external_loop() noexcept;

  std::deque<std::coroutine_handle<>> ready_;
  detail::Inbox* inbox_;
  // An ExternalLoop drives the thread and the thread is outside its run()
  // and prepare_wait(): a local post must wake the outside loop.
  bool wake_on_local_post_ = false;
  bool driving_ = false;
  bool worker_ = false;
  unsigned long_waits_ = 0;  // LongWait guards alive on this thread
  bool sync_done_ = false;
  std::coroutine_handle<> sync_root_;
  std::unique_ptr<EventLoop> thread_loop_;
  std::vector<EventLoop*> loops_;  // attached: thread_loop_ and private loops
  bool walking_loops_ = false;     // debug check: no attach/detach during a walk
  // While an ExternalLoop drives the thread: the inbox's eventfd, which every
  // attached loop's ring also signals (a loop attached meanwhile registers it).
  int external_fd_ = -1;
  std::size_t resumes_per_submit_ = kDefaultResumesPerSubmit;
  struct WaitReason {
    const void* owner;
    std::string reason;
    std::function<void()> break_wait;
  };
  std::vector<WaitReason> wait_reasons_;
  // Idle with local waits noted: breaks them; false when there were none.
  bool break_local_waits();
};

}  // namespace corobtree
