// A thread that a test runs beside its checks until they end: on every way
// out of the scope (a failed BOOST_REQUIRE throws) it raises the stop flag
// the thread polls and joins it, so a failure reports instead of calling
// std::terminate on a joinable std::thread.
#pragma once

#include <atomic>
#include <thread>
#include <utility>

namespace corobtree::test {

class StoppingThread {
 public:
  // Runs body(stop), where `stop` turns true when the guard ends.
  template <typename Body>
  explicit StoppingThread(Body body)
      : thread_([this, b = std::move(body)]() mutable { b(stop_); }) {}
  StoppingThread(const StoppingThread&) = delete;
  StoppingThread& operator=(const StoppingThread&) = delete;
  ~StoppingThread() { stop(); }

  // Raises the flag and waits for the thread (idempotent).
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};  // before thread_: set up before it starts
  std::thread thread_;
};

}  // namespace corobtree::test
