#include "io/scheduler.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <thread>

#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/yield.h>

#include "io/event_loop.h"

namespace corobtree {

namespace detail {

std::atomic<bool> g_cross_thread_handoffs{false};

// Whether this thread's last post to another thread woke it from a sleep it
// took under a Scheduler::LongWait (a durable commit's caller): that thread's
// next request is a wake-up and a turn away, so this thread does not stay
// awake for it (Scheduler::sleep_on_inbox). Only LongWait sleepers count:
// were every sleeper to, two threads that hop back and forth would each see
// the other asleep and both stop spinning for good.
thread_local bool t_woke_a_long_sleeper = false;

// A Scheduler's cross-thread queue (see scheduler.h). Immortal: never freed,
// so a poster holding a stale pointer never touches freed memory.
class Inbox {
 public:
  Inbox() = default;
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Any thread. False when the owner has exited.
  bool push(std::coroutine_handle<> h) noexcept {
    std::lock_guard<std::mutex> g(mu_);
    if (closed_) return false;
    try {
      items_.push_back(h);
    } catch (...) {
      std::terminate();  // out of memory in a noexcept hand-off, as posting locally
    }
    signal_locked();
    return true;
  }
  // Ends (or prevents) the owner's next sleep without queuing anything.
  void wake() noexcept {
    std::lock_guard<std::mutex> g(mu_);
    if (closed_) return;
    woken_.store(true, std::memory_order_seq_cst);
    wake_sleeper_locked();
  }

  // --- owner thread only ---
  // A post to the ready queue outside the external loop's turn: ends a
  // declared wait by writing the eventfd. Without one there is nothing to do
  // (the next prepare_wait() sees the ready queue).
  void wake_local() noexcept {
    if (sleeping_.exchange(false, std::memory_order_seq_cst) && efd_ >= 0) {
      const std::uint64_t one = 1;
      while (::write(efd_, &one, sizeof(one)) < 0 && errno == EINTR) {
      }
    }
  }
  bool maybe_nonempty() const noexcept { return nonempty_.load(std::memory_order_acquire); }
  void drain_into(std::deque<std::coroutine_handle<>>& ready) {
    {
      std::lock_guard<std::mutex> g(mu_);
      nonempty_.store(false, std::memory_order_relaxed);
      spare_.swap(items_);
    }
    for (std::coroutine_handle<> h : spare_) ready.push_back(h);
    spare_.clear();
  }
  // The eventfd, made on first need. -1 when the kernel refuses one.
  int eventfd() noexcept {
    if (efd_ < 0) {
      const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      std::lock_guard<std::mutex> g(mu_);
      efd_ = fd;
    }
    return efd_;
  }
  // Announces a sleep (`long_wait`: under a Scheduler::LongWait); false when
  // something is queued (or a wake pending).
  bool begin_sleep(bool long_wait) noexcept {
    long_sleep_.store(long_wait, std::memory_order_relaxed);  // published by sleeping_
    sleeping_.store(true, std::memory_order_seq_cst);
    if (nonempty_.load(std::memory_order_seq_cst) ||
        woken_.exchange(false, std::memory_order_seq_cst)) {
      sleeping_.store(false, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void end_sleep() noexcept { sleeping_.store(false, std::memory_order_seq_cst); }
  void reset_eventfd() noexcept {
    std::uint64_t v = 0;
    while (efd_ >= 0 && ::read(efd_, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
  }
  // In a forked child: the eventfd is the parent's too (a wake-up written or
  // read here would be the parent thread's), and another parent thread may
  // have held the mutex at the fork. Start both afresh.
  void reset_after_fork() noexcept {
    new (&mu_) std::mutex();
    if (efd_ >= 0) ::close(efd_);
    efd_ = -1;
    sleeping_.store(false, std::memory_order_relaxed);
    woken_.store(false, std::memory_order_relaxed);
  }
  bool close_if_empty() noexcept {
    std::lock_guard<std::mutex> g(mu_);
    if (!items_.empty()) return false;
    close_locked();
    return true;
  }
  // Closes the inbox and its eventfd. REQUIRES: no ring polls the eventfd
  // any more (the thread's loops are gone).
  void close() noexcept {
    std::lock_guard<std::mutex> g(mu_);
    close_locked();
    if (efd_ >= 0) ::close(efd_);
    efd_ = -1;
  }

  Inbox* next_ = nullptr;  // every inbox ever made (keeps them reachable)

 private:
  // REQUIRES: mu_ held and the inbox open. Publishes "something queued",
  // then wakes a sleeper.
  void signal_locked() noexcept {
    nonempty_.store(true, std::memory_order_seq_cst);
    wake_sleeper_locked();
  }
  void wake_sleeper_locked() noexcept {
    const bool asleep = sleeping_.exchange(false, std::memory_order_seq_cst);
    t_woke_a_long_sleeper = asleep && long_sleep_.load(std::memory_order_relaxed);
    if (asleep && efd_ >= 0) {
      const std::uint64_t one = 1;
      while (::write(efd_, &one, sizeof(one)) < 0 && errno == EINTR) {
      }
    }
  }
  void close_locked() noexcept {
    closed_ = true;
    items_.clear();  // their coroutines never run: the thread is gone
  }

  std::mutex mu_;
  std::vector<std::coroutine_handle<>> items_;  // under mu_
  std::vector<std::coroutine_handle<>> spare_;  // owner only
  bool closed_ = false;                         // under mu_
  int efd_ = -1;  // written by the owner under mu_; read by posters under mu_
  std::atomic<bool> nonempty_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> long_sleep_{false};  // the sleep announced is under a LongWait
  std::atomic<bool> woken_{false};       // wake() without a post
};

namespace {

std::atomic<Inbox*> g_all_inboxes{nullptr};
std::atomic<std::size_t> g_live_schedulers{0};
thread_local Inbox* t_home = nullptr;  // this thread's inbox, while its Scheduler lives
thread_local Scheduler* t_scheduler = nullptr;

Inbox* new_inbox() {
  auto* inbox = new Inbox();
  Inbox* head = g_all_inboxes.load(std::memory_order_relaxed);
  do {
    inbox->next_ = head;
  } while (!g_all_inboxes.compare_exchange_weak(head, inbox, std::memory_order_release,
                                                std::memory_order_relaxed));
  return inbox;
}

}  // namespace

Inbox* this_thread_home() noexcept {
  if (t_home == nullptr) (void)Scheduler::current();
  return t_home;
}

bool post_home(Inbox* home, std::coroutine_handle<> h) noexcept {
  if (home == t_home && t_scheduler != nullptr) {
    try {
      t_scheduler->post_local(h);
    } catch (...) {
      std::terminate();
    }
    return true;
  }
  return home != nullptr && home->push(h);
}

void wake_home(Inbox* home) noexcept {
  if (home != nullptr) home->wake();
}

// Makes a thread's sync_wait root coroutine (defined at the end of the file).
std::coroutine_handle<> make_sync_root(Inbox* home, bool& done);

}  // namespace detail

namespace {

// Marks a walk over the attached loops. Nothing in a walk resumes a coroutine,
// so nothing can construct or destroy a loop meanwhile; attach/detach check it.
class LoopWalk {
 public:
  explicit LoopWalk(bool& flag) noexcept : flag_(flag) { flag_ = true; }
  ~LoopWalk() { flag_ = false; }
  LoopWalk(const LoopWalk&) = delete;
  LoopWalk& operator=(const LoopWalk&) = delete;

 private:
  bool& flag_;
};

}  // namespace

Scheduler& Scheduler::current() noexcept {
  thread_local Scheduler scheduler;
  return scheduler;
}

Scheduler::Scheduler() : inbox_(detail::new_inbox()) {
  // Registered once per process, before any loop can exist (a loop needs a
  // Scheduler). A failure to register only loses the fork protection.
  static const int registered = ::pthread_atfork(nullptr, nullptr, &abandon_loops_in_child);
  (void)registered;
  detail::t_home = inbox_;
  detail::t_scheduler = this;
  detail::g_live_schedulers.fetch_add(1, std::memory_order_relaxed);
}

Scheduler::~Scheduler() {
  // The thread exits: its ring goes first, while the list it detaches from
  // is still alive. It waits out operations still in the kernel (and fires
  // the inbox's eventfd poll if one is armed, so the eventfd stays open until
  // then).
  thread_loop_.reset();
  inbox_->close();  // later posts fail; queued ones are dropped
  if (sync_root_) sync_root_.destroy();
  detail::t_scheduler = nullptr;
  detail::t_home = nullptr;
  detail::g_live_schedulers.fetch_sub(1, std::memory_order_relaxed);
}

std::size_t Scheduler::live_count() noexcept {
  return detail::g_live_schedulers.load(std::memory_order_relaxed);
}

void Scheduler::post(std::coroutine_handle<> h) {
  if (this == detail::t_scheduler) {
    post_local(h);
  } else {
    // h may be a coroutine that is running right now (handing itself over):
    // Task's start-inline hand-off must be atomic from here on.
    detail::g_cross_thread_handoffs.store(true, std::memory_order_relaxed);
    (void)inbox_->push(h);
  }
}

void Scheduler::wake_external_loop() noexcept { inbox_->wake_local(); }

void Scheduler::drain_inbox() { inbox_->drain_into(ready_); }

bool Scheduler::inbox_maybe_nonempty() const noexcept { return inbox_->maybe_nonempty(); }

int Scheduler::inbox_eventfd() noexcept { return inbox_->eventfd(); }

bool Scheduler::idle() const noexcept {
  if (!ready_.empty() || inbox_->maybe_nonempty()) return false;
  return std::all_of(loops_.begin(), loops_.end(), [](EventLoop* l) { return l->pending() == 0; });
}

bool Scheduler::close_inbox_if_empty() noexcept { return inbox_->close_if_empty(); }

bool Scheduler::begin_sleep() { return inbox_->begin_sleep(long_waits_ > 0); }

void Scheduler::end_sleep(bool eventfd_fired) noexcept {
  inbox_->end_sleep();
  if (eventfd_fired) inbox_->reset_eventfd();
}

void Scheduler::sleep_on_inbox() {
  const int fd = inbox_->eventfd();
  if (fd < 0) {
    throw Error(ErrorCode::kIoError,
                std::string("eventfd for cross-thread wake-ups failed: ") + std::strerror(errno),
                errno);
  }
  // A post from another thread usually follows within microseconds (the
  // other half of a hop): wait a little awake before paying for a sleep and
  // an eventfd wake-up on both sides. Yielding keeps an oversubscribed core
  // available to the thread that will post. Not while a LongWait lives, nor
  // when this thread's last post woke a thread sleeping under one (a durable
  // commit's caller answers late).
  const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
  const bool spin = long_waits_ == 0 && !detail::t_woke_a_long_sleeper;
  for (unsigned i = 1; spin && !inbox_->maybe_nonempty(); ++i) {
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() >= spin_until) break;
      std::this_thread::yield();
    }
  }
  if (inbox_->maybe_nonempty()) return;
  if (!begin_sleep()) return;
  pollfd p{};
  p.fd = fd;
  p.events = POLLIN;
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
  end_sleep(true);
}

void Scheduler::abandon_loops_in_child() noexcept {
  // Only the forking thread exists in the child; its loops' rings are shared
  // with the parent, which is still using them.
  Scheduler& s = current();
  // The other threads, and their Schedulers, do not exist in the child.
  detail::g_live_schedulers.store(1, std::memory_order_relaxed);
  const std::vector<EventLoop*> loops = std::exchange(s.loops_, {});
  for (EventLoop* l : loops) l->abandon_after_fork();
  s.thread_loop_.reset();  // already detached and abandoned: frees memory only
  s.inbox_->reset_after_fork();
}

EventLoop& Scheduler::loop() {
  if (!thread_loop_) thread_loop_ = std::make_unique<EventLoop>();
  return *thread_loop_;
}

void Scheduler::attach(EventLoop* loop) {
  assert(!walking_loops_);
  if (external_fd_ >= 0) loop->register_eventfd(external_fd_);  // may throw: not attached then
  loops_.push_back(loop);
}

void Scheduler::detach(EventLoop* loop) noexcept {
  assert(!walking_loops_);
  std::erase(loops_, loop);
}

std::size_t Scheduler::run_ready() {
  const std::size_t n = ready_.size();
  const std::size_t every = resumes_per_submit_;
  std::size_t since_submit = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::coroutine_handle<> h = ready_.front();
    ready_.pop_front();
    h.resume();  // may post more, construct or destroy loops and databases
    if (++since_submit == every && i + 1 < n) {
      // More of the batch to run: let the I/O queued so far start now. (The
      // last resumption needs none: run_turn() polls right after.)
      submit_queued_io();
      since_submit = 0;
    }
  }
  return n;
}

void Scheduler::submit_queued_io() {
  LoopWalk walk(walking_loops_);
  for (EventLoop* l : loops_) l->submit();
}

void Scheduler::run_turn() {
  if (inbox_->maybe_nonempty()) drain_inbox();
  if (run_ready() > 0) {
    // The batch may have finished the awaited task: let the caller look
    // before anything blocks. When more is ready, submit what the batch
    // queued and collect the completions already there without blocking, so
    // a stream of ready work never starves I/O. When nothing is, leave it to
    // the next turn, whose blocking poll submits and waits in one syscall.
    if (ready_.empty()) return;
    LoopWalk walk(walking_loops_);
    for (EventLoop* l : loops_) {
      if (l->pending() > 0) l->poll(false);
    }
    return;
  }
  LoopWalk walk(walking_loops_);
  EventLoop* busy = nullptr;
  std::size_t busy_count = 0;
  for (EventLoop* l : loops_) {
    if (l->pending() > 0) {
      busy = l;
      ++busy_count;
    }
  }
  // Another thread may post to this one: sleep until it does rather than
  // report a deadlock (see the preamble).
  const bool remote = worker_ || live_count() > 1;
  if (busy_count == 0) {
    if (remote) {
      if (break_local_waits()) return;  // their waiters are ready now, with an error
      sleep_on_inbox();
      return;
    }
    std::string msg = "a task is suspended with no ready coroutine and no I/O in flight to wake it";
    for (const WaitReason& w : wait_reasons_) msg += "; " + w.reason;
    throw Error(ErrorCode::kDeadlock, msg);
  }
  if (busy_count == 1) {
    if (!remote) {
      busy->poll(true);  // sleeps in io_uring_enter until something completes
      return;
    }
    // As in sleep_on_inbox: completions and posts often follow within
    // microseconds (a database's engine thread under load gets both every few
    // microseconds), and each sleep costs a wake-up on both sides. Reap
    // without blocking for a little while first.
    const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
    for (unsigned i = 1;; ++i) {
      if (busy->poll(false) > 0 || inbox_->maybe_nonempty()) return;
      if (i % 8 == 0) {
        if (std::chrono::steady_clock::now() >= spin_until) break;
        std::this_thread::yield();
      }
    }
    const int fd = inbox_->eventfd();
    if (fd >= 0) {
      if (!begin_sleep()) return;  // a post arrived: run it first
      busy->arm_wake(fd);
    }
    try {
      busy->poll(true);  // sleeps until something completes or a post arrives
    } catch (...) {
      end_sleep(busy->take_wake_fired());
      throw;
    }
    end_sleep(busy->take_wake_fired());
    return;
  }
  // Private loops with I/O in flight beside another loop: no single ring to
  // sleep in, so poll them all without blocking (see the header).
  for (EventLoop* l : loops_) {
    if (l->pending() > 0) l->poll(false);
  }
}

std::coroutine_handle<> Scheduler::sync_root() {
  if (!sync_root_) sync_root_ = detail::make_sync_root(inbox_, sync_done_);
  return sync_root_;
}

void Scheduler::note_waiting(const void* owner, std::string reason,
                             std::function<void()> break_wait) {
  for (WaitReason& w : wait_reasons_) {
    if (w.owner == owner) {
      w.reason = std::move(reason);
      w.break_wait = std::move(break_wait);
      return;
    }
  }
  wait_reasons_.push_back(WaitReason{owner, std::move(reason), std::move(break_wait)});
}

void Scheduler::clear_waiting(const void* owner) noexcept {
  std::erase_if(wait_reasons_, [owner](const WaitReason& w) { return w.owner == owner; });
}

bool Scheduler::break_local_waits() {
  if (inbox_->maybe_nonempty()) return false;
  std::vector<std::function<void()>> breaks;
  for (auto it = wait_reasons_.begin(); it != wait_reasons_.end();) {
    if (it->break_wait) {
      breaks.push_back(std::move(it->break_wait));
      it = wait_reasons_.erase(it);
    } else {
      ++it;
    }
  }
  for (const std::function<void()>& b : breaks) b();
  return !breaks.empty();
}

}  // namespace corobtree

namespace corobtree::detail {

namespace {

// The coroutine type of a thread's sync_wait root: resumed by the awaited
// task's final transfer (on whatever thread finished it), it hops back to its
// home thread and marks the wait done, then waits for the next sync_wait.
struct RootCoroutine {
  struct promise_type {
    RootCoroutine get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

class DrivingScope {
 public:
  explicit DrivingScope(Scheduler& s) noexcept : s_(s) { s_.set_driving(true); }
  ~DrivingScope() { s_.set_driving(false); }
  DrivingScope(const DrivingScope&) = delete;
  DrivingScope& operator=(const DrivingScope&) = delete;

 private:
  Scheduler& s_;
};

// `done` is the Scheduler's flag: the Scheduler owns (and destroys) this frame.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-reference-coroutine-parameters)
RootCoroutine root_loop(Inbox* home, bool& done) {
  for (;;) {
    co_await detail::HopHome(home);
    done = true;
    co_await std::suspend_always{};
  }
}

}  // namespace

std::coroutine_handle<> make_sync_root(Inbox* home, bool& done) {
  return root_loop(home, done).handle;
}

std::coroutine_handle<> begin_sync_wait() {
  Scheduler& s = Scheduler::current();
  if (s.driving()) {
    throw Error(ErrorCode::kInvalidArgument,
                "sync_wait called inside a coroutine running on this thread (or on a Runtime "
                "worker): it would nest the thread's loop; co_await the task instead");
  }
  return s.sync_root();
}

void run_until_done(std::coroutine_handle<> h) {
  Scheduler& scheduler = Scheduler::current();
  DrivingScope driving(scheduler);
  (void)scheduler.take_sync_done();
  h.resume();
  while (!scheduler.take_sync_done()) scheduler.run_turn();
  scheduler.submit_queued_io();
}

void post_to_this_thread(std::coroutine_handle<> h) { Scheduler::current().post_local(h); }

}  // namespace corobtree::detail
