// Looking at other threads of this process from a test: where a thread is
// blocked (/proc/self/task/TID/syscall), and a watchdog that turns a hang
// into a failure.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace corobtree::test {

inline pid_t this_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// The system call thread `tid` of this process is blocked in, or -1 while it
// runs (or has exited).
inline long blocked_syscall(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string first;
  in >> first;
  if (first.empty() || first == "running") return -1;
  try {
    return std::stol(first);
  } catch (const std::exception&) {
    return -1;
  }
}

inline bool blocked_in(pid_t tid, std::initializer_list<long> calls) {
  const long nr = blocked_syscall(tid);
  for (long c : calls) {
    if (nr == c) return true;
  }
  return false;
}

// Polls until `done()` (no deadline: a hang is the Watchdog's to report).
template <typename Pred>
void wait_for(Pred done) {
  while (!done()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// Aborts the process, naming `what`, unless destroyed within `limit`: a test
// that would hang fails instead. The limit is generous (it measures nothing).
class Watchdog {
 public:
  Watchdog(std::string what, std::chrono::seconds limit = std::chrono::seconds(120))
      : what_(std::move(what)), thread_([this, limit] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!cv_.wait_for(lock, limit, [this] { return disarmed_; })) {
            std::fprintf(stderr, "watchdog: '%s' still running after %lld s: hung\n", what_.c_str(),
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      disarmed_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::string what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace corobtree::test
