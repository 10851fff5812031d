#include "io/scheduler.h"

#include <pthread.h>

#include <algorithm>
#include <cassert>

#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/yield.h>

#include "io/event_loop.h"

namespace corobtree {

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

Scheduler::Scheduler() {
  // Registered once per process, before any loop can exist (a loop needs a
  // Scheduler). A failure to register only loses the fork protection.
  static const int registered = ::pthread_atfork(nullptr, nullptr, &abandon_loops_in_child);
  (void)registered;
}

Scheduler::~Scheduler() {
  // The thread exits: its ring goes first, while the list it detaches from
  // is still alive. It waits out operations still in the kernel.
  thread_loop_.reset();
}

void Scheduler::abandon_loops_in_child() noexcept {
  // Only the forking thread exists in the child; its loops' rings are shared
  // with the parent, which is still using them.
  Scheduler& s = current();
  const std::vector<EventLoop*> loops = std::exchange(s.loops_, {});
  for (EventLoop* l : loops) l->abandon_after_fork();
  s.thread_loop_.reset();  // already detached and abandoned: frees memory only
}

EventLoop& Scheduler::loop() {
  if (!thread_loop_) thread_loop_ = std::make_unique<EventLoop>();
  return *thread_loop_;
}

void Scheduler::attach(EventLoop* loop) {
  assert(!walking_loops_);
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
  if (busy_count == 0) {
    std::string msg = "a task is suspended with no ready coroutine and no I/O in flight to wake it";
    for (const auto& [owner, reason] : wait_reasons_) msg += "; " + reason;
    throw Error(ErrorCode::kDeadlock, msg);
  }
  if (busy_count == 1) {
    busy->poll(true);  // sleeps in io_uring_enter until something completes
    return;
  }
  // Private loops with I/O in flight beside another loop: no single ring to
  // sleep in, so poll them all without blocking (see the header).
  for (EventLoop* l : loops_) {
    if (l->pending() > 0) l->poll(false);
  }
}

void Scheduler::note_waiting(const void* owner, std::string reason) {
  for (auto& [o, r] : wait_reasons_) {
    if (o == owner) {
      r = std::move(reason);
      return;
    }
  }
  wait_reasons_.emplace_back(owner, std::move(reason));
}

void Scheduler::clear_waiting(const void* owner) noexcept {
  std::erase_if(wait_reasons_, [owner](const auto& e) { return e.first == owner; });
}

}  // namespace corobtree

namespace corobtree::detail {

void run_until_done(std::coroutine_handle<> h) {
  Scheduler& scheduler = Scheduler::current();
  h.resume();
  while (!h.done()) scheduler.run_turn();
  scheduler.submit_queued_io();
}

void post_to_this_thread(std::coroutine_handle<> h) { Scheduler::current().post(h); }

}  // namespace corobtree::detail
