#include <corobtree/runtime.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <corobtree/error.h>

#include "io/scheduler.h"

namespace corobtree {

namespace {

// The spawn()ed frames alive, to destroy the stranded ones at shutdown.
struct SpawnRegistry {
  std::mutex mu;
  std::unordered_set<void*> frames;
};

}  // namespace

struct Runtime::Impl {
  std::vector<std::thread> threads;
  std::vector<detail::Inbox*> inboxes;  // one per worker, set before the constructor returns
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stopping{false};

  std::mutex start_mu;
  std::condition_variable started_cv;
  std::size_t started = 0;

  SpawnRegistry spawned;

  void worker_main(std::size_t index);
  detail::Inbox* pick() noexcept {
    return inboxes[next.fetch_add(1, std::memory_order_relaxed) % inboxes.size()];
  }
};

namespace {

thread_local const void* t_worker_of = nullptr;  // the Runtime::Impl a worker belongs to

// A spawn()ed task's frame: created suspended, posted to a worker, frees
// itself when the task ends (or is destroyed by ~Runtime if stranded).
struct SpawnedTask {
  struct promise_type {
    promise_type(SpawnRegistry* registry, Task<void>& /*task*/) noexcept : registry_(registry) {}
    ~promise_type() {
      std::lock_guard<std::mutex> g(registry_->mu);
      registry_->frames.erase(std::coroutine_handle<promise_type>::from_promise(*this).address());
    }
    promise_type(const promise_type&) = delete;
    promise_type& operator=(const promise_type&) = delete;

    SpawnedTask get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }

    SpawnRegistry* registry_;
  };
  std::coroutine_handle<promise_type> handle;
};

// The task is a by-value parameter: it lives in (and dies with) the frame.
SpawnedTask run_spawned(SpawnRegistry* /*registry*/, Task<void> task) { co_await std::move(task); }

}  // namespace

void Runtime::Impl::worker_main(std::size_t index) {
  Scheduler& s = Scheduler::current();
  t_worker_of = this;
  s.set_worker(true);   // idle: sleep until a post, never kDeadlock
  s.set_driving(true);  // sync_wait on a worker would nest its loop: refused
  {
    std::lock_guard<std::mutex> g(start_mu);
    inboxes[index] = s.home();
    ++started;
  }
  started_cv.notify_all();
  for (;;) {
    // Stop once nothing is left to run here; closing the inbox (only when it
    // is empty) makes later posts fail instead of being dropped.
    if (stopping.load(std::memory_order_acquire) && s.idle() && s.close_inbox_if_empty()) break;
    s.run_turn();
  }
  s.set_driving(false);
  t_worker_of = nullptr;
}

Runtime::Runtime(std::size_t threads) : impl_(std::make_unique<Impl>()) {
  if (threads == 0) threads = 1;
  // schedule() hands a running coroutine to a worker: from now on Task's
  // start-inline hand-off is atomic (see task.h). Before any worker starts.
  detail::g_cross_thread_handoffs.store(true, std::memory_order_relaxed);
  impl_->inboxes.assign(threads, nullptr);
  impl_->threads.reserve(threads);
  try {
    for (std::size_t i = 0; i < threads; ++i) {
      impl_->threads.emplace_back([impl = impl_.get(), i] { impl->worker_main(i); });
    }
  } catch (...) {
    // Stop the workers that did start (their inboxes may not be set yet).
    impl_->stopping.store(true, std::memory_order_release);
    {
      std::unique_lock<std::mutex> lk(impl_->start_mu);
      impl_->started_cv.wait(lk, [&] { return impl_->started == impl_->threads.size(); });
    }
    for (detail::Inbox* in : impl_->inboxes) detail::wake_home(in);
    for (std::thread& t : impl_->threads) t.join();
    throw;
  }
  std::unique_lock<std::mutex> lk(impl_->start_mu);
  impl_->started_cv.wait(lk, [&] { return impl_->started == threads; });
}

Runtime::~Runtime() {
  impl_->stopping.store(true, std::memory_order_release);
  for (detail::Inbox* in : impl_->inboxes) detail::wake_home(in);
  for (std::thread& t : impl_->threads) t.join();
  // Spawned tasks still suspended can never resume: unwind them here.
  std::vector<void*> stranded;
  {
    std::lock_guard<std::mutex> g(impl_->spawned.mu);
    stranded.assign(impl_->spawned.frames.begin(), impl_->spawned.frames.end());
  }
  for (void* frame : stranded) std::coroutine_handle<>::from_address(frame).destroy();
}

std::size_t Runtime::size() const noexcept { return impl_->threads.size(); }

bool Runtime::on_worker() const noexcept { return t_worker_of == impl_.get(); }

void Runtime::post_to_worker(std::coroutine_handle<> h) {
  if (impl_->stopping.load(std::memory_order_acquire) || !detail::post_home(impl_->pick(), h)) {
    throw Error(ErrorCode::kClosed, "the Runtime is shutting down");
  }
}

void Runtime::spawn(Task<void> task) {
  if (!task.valid()) throw Error(ErrorCode::kInvalidArgument, "spawn of an empty Task");
  if (impl_->stopping.load(std::memory_order_acquire)) {
    throw Error(ErrorCode::kClosed, "the Runtime is shutting down");
  }
  const std::coroutine_handle<> h = run_spawned(&impl_->spawned, std::move(task)).handle;
  {
    std::lock_guard<std::mutex> g(impl_->spawned.mu);
    impl_->spawned.frames.insert(h.address());
  }
  if (!detail::post_home(impl_->pick(), h)) {
    h.destroy();
    throw Error(ErrorCode::kClosed, "the Runtime is shutting down");
  }
}

}  // namespace corobtree
