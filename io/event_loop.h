// EventLoop: an io_uring reactor that turns reads, writes and fsyncs into
// awaitables. Each thread has one, owned by its Scheduler (Scheduler::loop(),
// also reachable as EventLoop::for_this_thread()) and shared by every
// DiskManager, hence every database, the thread opens.
//
// Awaiting an operation only places it in the submission queue (or, when the
// SQ is full or the kernel already holds as many operations as the CQ has
// room for, in an unbounded backlog). Nothing enters the kernel until the
// thread's Scheduler polls the loop or submits early. A poll submits what is
// queued and, if asked, sleeps until something completes, with one
// io_uring_enter (while an fsync is in flight it first checks the CQ for up
// to sync_spin_us, each check another io_uring_enter; see EventLoopOptions),
// then reaps every completion.
//
// Completions never resume anything: reaping a CQE (or failing the
// operations that never reached the kernel after a fatal io_uring_enter
// error) records the result in the operation and posts its waiter to the
// Scheduler's ready queue; the Scheduler resumes it on its next turn. So no
// EventLoop method runs user code, and nothing here touches `this` after a
// coroutine ran (a resumed coroutine may destroy a database, or even a
// private loop, at any point of its turn).
//
// Early submission: while the Scheduler resumes a batch of ready coroutines,
// what they queue is submitted after every Scheduler::resumes_per_submit()
// resumptions by an extra, submit-only io_uring_enter (submit(); counted in
// stats().enters and .early_submits), so the device works on it while the
// rest of the batch runs. Only a resumption boundary submits: awaiting never
// enters the kernel by itself.
//
// Retries: -EAGAIN and -EINTR completions are resubmitted; a short read or
// write is resubmitted for the remainder until it completes, fails, or (reads
// only) hits end of file, in which case the bytes transferred so far are
// returned. io_uring_enter's -EBUSY/-EAGAIN are handled by reaping first.
//
// Sizing: the CQ is at least twice the SQ, and at most cq_entries operations
// are in the kernel at once, so completions never overflow.
//
// Thread-safety: an EventLoop belongs to the thread that created it: it
// attaches to that thread's Scheduler, and only that thread may await its
// operations, poll it or destroy it. Constructing one directly makes a
// private loop (tests, tools): it works beside the thread's, but two loops
// with I/O in flight at once are polled without blocking (see scheduler.h).
// In a forked child the parent's loops are abandoned: their operations never
// complete in the child, and new ones fail at once with -ECANCELED.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

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
  std::uint64_t enters = 0;         // io_uring_enter calls that submit or wait (poll(), submit())
  std::uint64_t early_submits = 0;  // of which submit-only, between resumptions
  std::uint64_t submitted = 0;      // SQEs handed to the kernel (incl. resubmits)
  std::uint64_t completed = 0;      // operations finished (waiter posted to the ready queue)
  std::uint64_t resubmitted = 0;    // short transfers, EAGAIN and EINTR retried
  std::uint64_t backlogged = 0;     // operations that waited in the backlog
  std::uint64_t in_flight = 0;      // operations started and not yet finished
  std::uint64_t max_in_flight = 0;  // the most ever in flight at once
  std::uint64_t spin_polls = 0;     // completion checks (io_uring_enter) spinning on an fsync
};

class EventLoop final {
 public:
  // Throws Error(kNotSupported, sys_errno = the io_uring_setup errno) when the
  // kernel refuses the ring (ENOSYS, EPERM, ENOMEM, EINVAL, ...).
  explicit EventLoop(EventLoopOptions options = {});
  // Waits for the operations still in the kernel (they point into coroutine
  // frames); they, and those never submitted (with -ECANCELED), are posted to
  // their waiters rather than left waiting forever.
  // REQUIRES: runs on the loop's thread before that thread's Scheduler is
  // destroyed (a private loop must not outlive its thread).
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // The calling thread's loop: Scheduler::current().loop(). Created on first
  // use and kept until the thread exits. Throws like the constructor when the
  // kernel refuses a ring.
  static EventLoop& for_this_thread();

  // One operation; lives in the awaiting coroutine's frame until it resumes.
  struct Operation {
    std::uint8_t opcode = 0;
    int fd = -1;
    char* buf = nullptr;
    std::uint32_t len = 0;
    std::uint64_t offset = 0;
    std::uint32_t done = 0;  // bytes transferred so far
    std::uint32_t fsync_flags = 0;
    int result = 0;  // final: bytes transferred, or -errno
    std::coroutine_handle<> waiter;
    Operation* next = nullptr;
  };

  class OpAwaiter {
   public:
    OpAwaiter(EventLoop& loop, Operation op) noexcept : loop_(loop), op_(op) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      op_.waiter = h;
      loop_.enqueue(&op_);  // publishes the waiter: touch nothing after it
    }
    // Bytes transferred (may be short only for a read that reached EOF), or -errno.
    int await_resume() const noexcept { return op_.result; }

   private:
    EventLoop& loop_;
    Operation op_;
  };

  // REQUIRES: buf stays valid until the awaiting coroutine resumes.
  OpAwaiter read(int fd, void* buf, std::uint32_t len, std::uint64_t offset) noexcept;
  // A vectored read into `count` buffers (IORING_OP_READV). Unlike read(), a
  // short transfer is not resubmitted: it returns the bytes transferred, and
  // the caller reads the rest. REQUIRES: iov[0 .. count) and the buffers stay
  // valid until the awaiting coroutine resumes; count <= IOV_MAX.
  OpAwaiter readv(int fd, const struct iovec* iov, unsigned count, std::uint64_t offset) noexcept;
  OpAwaiter write(int fd, const void* buf, std::uint32_t len, std::uint64_t offset) noexcept;
  // datasync: fdatasync semantics (IORING_FSYNC_DATASYNC).
  OpAwaiter fsync(int fd, bool datasync = false) noexcept;

  // Operations awaited and not yet finished.
  std::size_t pending() const noexcept { return stats_.in_flight; }
  // Submits everything queued and reaps every completion, posting the
  // waiters; with block == true first sleeps until at least one operation
  // completes (when any is in flight). Returns the number of operations
  // finished. Called by the Scheduler; resumes nothing.
  std::size_t poll(bool block);
  // Submits what is queued (backlog included, room permitting) with one
  // io_uring_enter that neither waits nor reaps; no-op when nothing is queued.
  // A failure other than EINTR leaves the operations queued for the next poll,
  // which handles it. Returns the number of SQEs submitted.
  std::size_t submit();

  // Cross-thread wake-up (see scheduler.h): arms an IORING_OP_POLL_ADD on the
  // Scheduler's eventfd unless one is already armed, so a blocking poll also
  // ends when another thread posts. Not counted in pending() or the stats.
  void arm_wake(int eventfd) noexcept;
  // True (once) when the armed eventfd poll has completed since the last call.
  bool take_wake_fired() noexcept;

  // External driving (corobtree/external_loop.h): every completion the ring
  // posts also signals `eventfd` (io_uring_register_eventfd), so an outside
  // event loop watching it learns that there is something to reap. Throws
  // Error(kIoError) when the kernel refuses. No-op for an abandoned ring.
  void register_eventfd(int eventfd);
  void unregister_eventfd() noexcept;
  // Completions waiting in the CQ, not yet reaped.
  bool completions_ready() const noexcept;

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

  friend class Scheduler;  // abandon_after_fork

  void enqueue(Operation* op) noexcept;
  // Counts op as finished and posts its waiter. REQUIRES: op->result is set.
  // The waiter may run (and free *op) as soon as the Scheduler's next turn.
  void complete(Operation* op) noexcept;
  void queue_to_sq(Operation* op) noexcept;  // REQUIRES: a free SQE and kernel room
  bool has_room() const noexcept;
  void drain_backlog() noexcept;
  std::size_t reap() noexcept;
  // Fails every operation not yet in the kernel with `err`: after a fatal
  // io_uring_enter error, and when the loop is destroyed.
  std::size_t fail_unsubmitted(int err) noexcept;
  // Returns true if the operation finished (and was posted).
  bool handle_completion(Operation* op, int res) noexcept;
  // In a forked child: forgets every operation (they belong to the parent's
  // ring, which the parent still uses) and unmaps the ring without waiting.
  void abandon_after_fork() noexcept;

  io_uring ring_{};
  unsigned sq_entries_ = 0;
  unsigned cq_entries_ = 0;
  unsigned queued_in_sq_ = 0;     // prepared SQEs not yet submitted
  unsigned in_kernel_ = 0;        // submitted and not yet reaped
  unsigned syncs_in_flight_ = 0;  // fsyncs enqueued and not yet finished
  std::uint64_t sync_spin_ns_ = 0;
  OpQueue backlog_;
  EventLoopStats stats_{};
  // user_data of the eventfd poll (never an Operation's address).
  static constexpr std::uint64_t kWakeTag = 1;
  bool wake_armed_ = false;  // the eventfd poll is queued or in the kernel
  bool wake_fired_ = false;
  int wake_fd_ = -1;
  bool eventfd_registered_ = false;  // register_eventfd() is in force

  Scheduler* scheduler_;    // of the creating thread: where waiters are posted
  bool ring_open_ = false;  // false once abandoned after a fork
};

}  // namespace corobtree
