// ExternalLoop (corobtree/external_loop.h): the Scheduler's turn, split in
// the two halves an outside event loop needs (run, prepare_wait), with the
// inbox's eventfd as the one descriptor it watches.
#include <corobtree/external_loop.h>

#include <fcntl.h>
#include <poll.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>

#include <corobtree/error.h>

#include "io/event_loop.h"
#include "io/scheduler.h"

namespace corobtree {

namespace {

// Sets a flag for a scope (the Scheduler's walk marker, ExternalLoop::running_).
class FlagScope {
 public:
  explicit FlagScope(bool& flag) noexcept : flag_(flag) { flag_ = true; }
  ~FlagScope() { flag_ = false; }
  FlagScope(const FlagScope&) = delete;
  FlagScope& operator=(const FlagScope&) = delete;

 private:
  bool& flag_;
};

// Clears Scheduler::wake_on_local_post_ for a scope (run(), prepare_wait():
// the loop looks at the ready queue itself), then sets it again.
class InsideTurn {
 public:
  explicit InsideTurn(bool& flag) noexcept : flag_(flag) { flag_ = false; }
  ~InsideTurn() { flag_ = true; }
  InsideTurn(const InsideTurn&) = delete;
  InsideTurn& operator=(const InsideTurn&) = delete;

 private:
  bool& flag_;
};

}  // namespace

ExternalLoop::ExternalLoop() : scheduler_(&Scheduler::current()) {
  Scheduler& s = *scheduler_;
  if (s.driving()) {
    throw Error(ErrorCode::kInvalidArgument,
                "ExternalLoop: this thread is already driven (inside sync_wait or a coroutine, on "
                "a Runtime worker, or by another ExternalLoop)");
  }
  const int fd = s.inbox_eventfd();
  if (fd < 0) {
    throw Error(ErrorCode::kIoError,
                std::string("eventfd for an external loop failed: ") + std::strerror(errno), errno);
  }
  std::size_t registered = 0;
  try {
    for (; registered < s.loops_.size(); ++registered) s.loops_[registered]->register_eventfd(fd);
  } catch (...) {
    for (std::size_t i = 0; i < registered; ++i) s.loops_[i]->unregister_eventfd();
    throw;
  }
  s.external_fd_ = fd;  // a loop attached from now on registers it too
  s.set_driving(true);
  s.wake_on_local_post_ = true;
  fd_ = fd;
  home_ = s.home();
}

ExternalLoop::~ExternalLoop() {
  Scheduler& s = *scheduler_;
  assert(!running_);
  for (EventLoop* l : s.loops_) l->unregister_eventfd();
  s.external_fd_ = -1;
  s.wake_on_local_post_ = false;
  s.set_driving(false);
  s.end_sleep(true);  // a declared wait ends here; the next driver starts with a clear eventfd
}

std::size_t ExternalLoop::run() {
  Scheduler& s = *scheduler_;
  assert(!running_);
  FlagScope running(running_);
  InsideTurn inside(s.wake_on_local_post_);
  // The order matters: the eventfd is cleared before the ring is reaped and
  // the inbox looked at, so whatever arrives after those looks makes it
  // readable again.
  s.end_sleep(true);
  {
    FlagScope walk(s.walking_loops_);
    for (EventLoop* l : s.loops_) {
      if (l->pending() > 0 || l->completions_ready()) l->poll(false);
    }
  }
  if (s.inbox_maybe_nonempty()) s.drain_inbox();
  const std::size_t resumed = s.run_ready();
  s.submit_queued_io();
  return resumed;
}

bool ExternalLoop::prepare_wait() {
  Scheduler& s = *scheduler_;
  InsideTurn inside(s.wake_on_local_post_);
  s.submit_queued_io();
  if (!s.ready_.empty() || s.inbox_maybe_nonempty()) return false;
  bool io_in_flight = false;
  for (EventLoop* l : s.loops_) {
    if (l->completions_ready()) return false;
    if (l->pending() > 0) io_in_flight = true;
  }
  // Idle, with a wait only this thread could end: end it (its waiters are
  // ready now, with an error) rather than wait forever.
  if (!io_in_flight && s.break_local_waits()) return false;
  // From here a post writes the eventfd; one that came first is seen here.
  return s.begin_sleep();
}

int ExternalLoop::duplicate_fd() const {
  const int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    throw Error(ErrorCode::kIoError, std::string("ExternalLoop: dup: ") + std::strerror(errno),
                errno);
  }
  return fd;
}

void ExternalLoop::wait() {
  pollfd p{};
  p.fd = fd_;
  p.events = POLLIN;
  while (::poll(&p, 1, -1) < 0) {
    if (errno != EINTR) {
      throw Error(ErrorCode::kIoError, std::string("ExternalLoop: poll: ") + std::strerror(errno),
                  errno);
    }
  }
}

bool ExternalLoop::idle() const noexcept { return scheduler_->idle(); }

bool ExternalLoop::Home::await_ready() const noexcept {
  return detail::this_thread_home() == inbox_;
}

void ExternalLoop::Home::await_suspend(std::coroutine_handle<> h) const noexcept {
  (void)detail::post_home(inbox_, h);  // touches nothing of h afterwards
}

}  // namespace corobtree
