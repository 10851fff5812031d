#include "io/scheduler.h"

#include <corobtree/sync_wait.h>

#include <algorithm>

#include <corobtree/error.h>

namespace corobtree {

Scheduler& Scheduler::current() noexcept {
  thread_local Scheduler scheduler;
  return scheduler;
}

std::size_t Scheduler::run_ready() {
  // Only what is ready now: coroutines posted while running wait for the next
  // turn, so I/O gets polled between batches.
  std::size_t n = ready_.size();
  const std::size_t every = resumes_per_submit_;
  std::size_t since_submit = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::coroutine_handle<> h = ready_.front();
    ready_.pop_front();
    h.resume();
    if (++since_submit == every && i + 1 < n) {
      // More of the batch to run: let the I/O queued so far start now. (The
      // last resumption needs none: run_turn() polls right after.)
      submit_sources();
      since_submit = 0;
    }
  }
  return n;
}

void Scheduler::submit_sources() {
  for (IoSource* s : sources_) s->submit();
}

void Scheduler::run_turn() {
  ++turns_;
  if (run_ready() > 0) {
    // Let sources make progress without blocking, so queued submissions go out.
    for (IoSource* s : sources_) {
      if (s->pending() > 0) s->poll(false);
    }
    return;
  }
  IoSource* busy = nullptr;
  std::size_t busy_count = 0;
  for (IoSource* s : sources_) {
    if (s->pending() > 0) {
      busy = s;
      ++busy_count;
    }
  }
  if (busy_count == 0) {
    std::string msg = "a task is suspended with no ready coroutine and no I/O in flight to wake it";
    for (const auto& [owner, reason] : wait_reasons_) msg += "; " + reason;
    throw Error(ErrorCode::kDeadlock, msg);
  }
  if (busy_count == 1) {
    busy->poll(true);
    return;
  }
  // Several loops on one thread: poll them all without blocking (one loop per
  // thread is the recommended setup; this path only keeps it correct).
  for (IoSource* s : sources_) {
    if (s->pending() > 0) s->poll(false);
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

void Scheduler::flush_submissions() {
  for (IoSource* s : sources_) {
    if (s->pending() > 0) s->poll(false);
  }
}

void Scheduler::add_source(IoSource* source) { sources_.push_back(source); }

void Scheduler::remove_source(IoSource* source) noexcept {
  sources_.erase(std::remove(sources_.begin(), sources_.end(), source), sources_.end());
}

}  // namespace corobtree

namespace corobtree::detail {

void run_until_done(std::coroutine_handle<> h) {
  Scheduler& scheduler = Scheduler::current();
  h.resume();
  while (!h.done()) scheduler.run_turn();
  scheduler.flush_submissions();
}

}  // namespace corobtree::detail

namespace corobtree::detail {

void post_to_this_thread(std::coroutine_handle<> h) { Scheduler::current().post(h); }

}  // namespace corobtree::detail
