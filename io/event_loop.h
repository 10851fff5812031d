// EventLoop: an io_uring reactor that turns reads, writes and fsyncs into
// awaitables.
//
// Awaiting an operation only places it in the submission queue (or, when the
// SQ is full or the kernel already holds as many operations as the CQ has
// room for, in an unbounded backlog). Nothing enters the kernel until the
// thread's Scheduler polls the loop: each poll makes one io_uring_enter that
// both submits everything queued and, if asked, waits, then reaps every
// completion and resumes the waiting coroutines.
//
// Early submission: while a batch of coroutines is being resumed (by a poll, or
// by the Scheduler's ready queue), what they queue is submitted after every
// Scheduler::resumes_per_submit() resumptions by an extra, submit-only
// io_uring_enter (submit(); counted in stats().enters and .early_submits), so
// the device works on it while the rest of the batch runs. Only a resumption
// boundary submits: awaiting never enters the kernel by itself.
//
// Retries: -EAGAIN and -EINTR completions are resubmitted; a short read or
// write is resubmitted for the remainder until it completes, fails, or (reads
// only) hits end of file, in which case the bytes transferred so far are
// returned. io_uring_enter's -EBUSY/-EAGAIN are handled by reaping first.
//
// Sizing: the CQ is at least twice the SQ, and at most cq_entries operations
// are in the kernel at once, so completions never overflow.
//
// Thread-safety: an EventLoop belongs to the thread that created it (it
// registers with that thread's Scheduler). One loop per thread is the intended
// setup; several work but are polled without blocking.
#pragma once

#include <liburing.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/scheduler.h"

namespace corobtree {

struct EventLoopOptions {
  unsigned sq_entries = 256;  // rounded up to a power of two by the kernel
  unsigned cq_factor = 2;     // CQ = cq_factor * SQ; values below 2 are raised to 2
  // While an fsync is in flight, a blocking poll first polls the completion
  // queue this long (a durable commit waits on it); 0 = sleep at once.
  unsigned sync_spin_us = 250;
};

struct EventLoopStats {
  std::uint64_t enters = 0;        // io_uring_enter calls (poll() and submit())
  std::uint64_t early_submits = 0; // of which submit-only, between resumptions
  std::uint64_t submitted = 0;     // SQEs handed to the kernel (incl. resubmits)
  std::uint64_t completed = 0;     // operations finished and resumed
  std::uint64_t resubmitted = 0;   // short transfers, EAGAIN and EINTR retried
  std::uint64_t backlogged = 0;    // operations that waited in the backlog
  std::uint64_t in_flight = 0;     // operations started and not yet finished
  std::uint64_t max_in_flight = 0; // the most ever in flight at once
  std::uint64_t spin_polls = 0;    // completion checks while spinning on an fsync
};

class EventLoop final : public IoSource {
 public:
  // Throws Error(kNotSupported, sys_errno = the io_uring_setup errno) when the
  // kernel refuses the ring (ENOSYS, EPERM, ENOMEM, EINVAL, ...).
  explicit EventLoop(EventLoopOptions options = {});
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;

  // The calling thread's loop, created on first use and kept until the thread
  // exits; every DiskManager opened on this thread shares it. Throws like the
  // constructor when the kernel refuses a ring.
  static EventLoop& for_this_thread();
  EventLoop& operator=(const EventLoop&) = delete;

  // One operation; lives in the awaiting coroutine's frame until it resumes.
  struct Operation {
    std::uint8_t opcode = 0;
    int fd = -1;
    char* buf = nullptr;
    std::uint32_t len = 0;
    std::uint64_t offset = 0;
    std::uint32_t done = 0;  // bytes transferred so far
    std::uint32_t fsync_flags = 0;
    int result = 0;          // final: bytes transferred, or -errno
    std::coroutine_handle<> waiter;
    Operation* next = nullptr;
  };

  class OpAwaiter {
   public:
    OpAwaiter(EventLoop& loop, Operation op) noexcept : loop_(loop), op_(op) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      op_.waiter = h;
      loop_.enqueue(&op_);
    }
    // Bytes transferred (may be short only for a read that reached EOF), or -errno.
    int await_resume() const noexcept { return op_.result; }

   private:
    EventLoop& loop_;
    Operation op_;
  };

  // REQUIRES: buf stays valid until the awaiting coroutine resumes.
  OpAwaiter read(int fd, void* buf, std::uint32_t len, std::uint64_t offset) noexcept;
  OpAwaiter write(int fd, const void* buf, std::uint32_t len, std::uint64_t offset) noexcept;
  // datasync: fdatasync semantics (IORING_FSYNC_DATASYNC).
  OpAwaiter fsync(int fd, bool datasync = false) noexcept;

  // IoSource
  std::size_t pending() const noexcept override { return stats_.in_flight; }
  std::size_t poll(bool block) override;
  // Submits what is queued (backlog included, room permitting) with one
  // io_uring_enter that neither waits nor reaps; no-op when nothing is queued.
  // A failure other than EINTR leaves the operations queued for the next poll,
  // which handles it.
  std::size_t submit() override;

  EventLoopStats stats() const noexcept { return stats_; }
  void reset_max_in_flight() noexcept { stats_.max_in_flight = stats_.in_flight; }
  unsigned sq_entries() const noexcept { return sq_entries_; }
  unsigned cq_entries() const noexcept { return cq_entries_; }

 private:
  // An intrusive FIFO of operations (through Operation::next).
  struct OpQueue {
    Operation* head = nullptr;
    Operation* tail = nullptr;
    bool empty() const noexcept { return head == nullptr; }
    void push(Operation* op) noexcept {
      op->next = nullptr;
      if (tail) {
        tail->next = op;
      } else {
        head = op;
      }
      tail = op;
    }
    Operation* pop() noexcept {
      Operation* op = head;
      if (op) {
        head = op->next;
        if (!head) tail = nullptr;
      }
      return op;
    }
  };

  void enqueue(Operation* op) noexcept;
  void finish(Operation* op, OpQueue& done) noexcept;  // counts it and queues it for resumption
  std::size_t resume_all(OpQueue& done);
  void queue_to_sq(Operation* op) noexcept;  // REQUIRES: a free SQE and kernel room
  bool has_room() const noexcept;
  void drain_backlog() noexcept;
  std::size_t reap();
  std::size_t fail_unsubmitted(int err);  // after a fatal io_uring_enter error
  void handle_completion(Operation* op, int res, OpQueue& done);

  io_uring ring_{};
  unsigned sq_entries_ = 0;
  unsigned cq_entries_ = 0;
  unsigned queued_in_sq_ = 0;  // prepared SQEs not yet submitted
  unsigned in_kernel_ = 0;     // submitted and not yet reaped
  unsigned syncs_in_flight_ = 0;  // fsyncs enqueued and not yet finished
  std::uint64_t sync_spin_ns_ = 0;
  OpQueue backlog_;
  EventLoopStats stats_{};
  bool* alive_while_resuming_ = nullptr;  // see resume_all()
  int owner_pid_ = 0;  // the process that set the ring up (see for_this_thread)
};

}  // namespace corobtree
