#include "io/event_loop.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include <corobtree/error.h>

namespace corobtree {

namespace {

int setup_ring(io_uring* ring, unsigned entries, unsigned cq_entries, unsigned extra_flags) {
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  params.flags = IORING_SETUP_CQSIZE | extra_flags;
  params.cq_entries = cq_entries;
  return io_uring_queue_init_params(entries, ring, &params);
}

}  // namespace

EventLoop::EventLoop(EventLoopOptions options) : scheduler_(&Scheduler::current()) {
  unsigned entries = options.sq_entries == 0 ? 1 : options.sq_entries;
  unsigned factor = options.cq_factor < 2 ? 2 : options.cq_factor;
  // COOP_TASKRUN avoids IPIs for task work; older kernels reject it with EINVAL.
  int ret = setup_ring(&ring_, entries, entries * factor, IORING_SETUP_COOP_TASKRUN);
  if (ret == -EINVAL) ret = setup_ring(&ring_, entries, entries * factor, 0);
  if (ret < 0) {
    throw Error(ErrorCode::kNotSupported,
                std::string("io_uring_setup failed: ") + std::strerror(-ret), -ret);
  }
  ring_open_ = true;
  sq_entries_ = ring_.sq.ring_entries;
  cq_entries_ = ring_.cq.ring_entries;
  sync_spin_ns_ = std::uint64_t{options.sync_spin_us} * 1000;
  try {
    scheduler_->attach(this);
  } catch (...) {
    io_uring_queue_exit(&ring_);
    throw;
  }
}

EventLoop& EventLoop::for_this_thread() { return Scheduler::current().loop(); }

EventLoop::~EventLoop() {
  if (!ring_open_) return;  // abandoned in a forked child: already detached and unmapped
  scheduler_->detach(this);
  fail_unsubmitted(-ECANCELED);
  // An eventfd poll still in the kernel: make it fire (the Scheduler closes
  // the eventfd only after this loop is gone).
  if (wake_armed_ && wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  }
  // Operations still in the kernel reference buffers in coroutine frames;
  // wait them out so the kernel never writes into freed memory. Whatever
  // they return is final: nothing is resubmitted any more.
  while (in_kernel_ > 0) {
    io_uring_cqe* cqe = nullptr;
    const int ret = io_uring_wait_cqe(&ring_, &cqe);
    if (ret == -EINTR) continue;
    if (ret < 0) break;
    if (cqe->user_data == kWakeTag) {
      wake_armed_ = false;
    } else if (auto* op = static_cast<Operation*>(io_uring_cqe_get_data(cqe))) {
      op->result = cqe->res < 0 ? cqe->res : static_cast<int>(op->done) + cqe->res;
      complete(op);
    }
    io_uring_cqe_seen(&ring_, cqe);
    --in_kernel_;
  }
  fail_unsubmitted(-ECANCELED);  // short transfers requeued meanwhile: none, but be sure
  io_uring_queue_exit(&ring_);
}

void EventLoop::abandon_after_fork() noexcept {
  if (!ring_open_) return;
  // The operations' coroutine frames are copies the parent will resume; here
  // they stay suspended. Nothing is posted, nothing waited for.
  backlog_ = OpQueue{};
  in_kernel_ = 0;
  queued_in_sq_ = 0;
  syncs_in_flight_ = 0;
  stats_.in_flight = 0;
  wake_armed_ = false;
  eventfd_registered_ = false;
  ring_open_ = false;
  io_uring_queue_exit(&ring_);  // unmaps and closes the child's copy only
}

EventLoop::OpAwaiter EventLoop::read(int fd, void* buf, std::uint32_t len,
                                     std::uint64_t offset) noexcept {
  Operation op;
  op.opcode = IORING_OP_READ;
  op.fd = fd;
  op.buf = static_cast<char*>(buf);
  op.len = len;
  op.offset = offset;
  return OpAwaiter(*this, op);
}

EventLoop::OpAwaiter EventLoop::readv(int fd, const struct iovec* iov, unsigned count,
                                      std::uint64_t offset) noexcept {
  Operation op;
  op.opcode = IORING_OP_READV;
  op.fd = fd;
  op.buf = reinterpret_cast<char*>(const_cast<struct iovec*>(iov));
  op.len = count;  // iovecs, not bytes
  op.offset = offset;
  return OpAwaiter(*this, op);
}

EventLoop::OpAwaiter EventLoop::write(int fd, const void* buf, std::uint32_t len,
                                      std::uint64_t offset) noexcept {
  Operation op;
  op.opcode = IORING_OP_WRITE;
  op.fd = fd;
  op.buf = static_cast<char*>(const_cast<void*>(buf));
  op.len = len;
  op.offset = offset;
  return OpAwaiter(*this, op);
}

EventLoop::OpAwaiter EventLoop::fsync(int fd, bool datasync) noexcept {
  Operation op;
  op.opcode = IORING_OP_FSYNC;
  op.fd = fd;
  op.fsync_flags = datasync ? IORING_FSYNC_DATASYNC : 0;
  return OpAwaiter(*this, op);
}

bool EventLoop::has_room() const noexcept {
  return in_kernel_ + queued_in_sq_ < cq_entries_ && io_uring_sq_space_left(&ring_) > 0;
}

void EventLoop::enqueue(Operation* op) noexcept {
  if (!ring_open_) {  // a parent's loop in a forked child
    op->result = -ECANCELED;
    scheduler_->post_local(op->waiter);
    return;
  }
  ++stats_.in_flight;
  if (op->opcode == IORING_OP_FSYNC) ++syncs_in_flight_;
  if (stats_.in_flight > stats_.max_in_flight) stats_.max_in_flight = stats_.in_flight;
  if (backlog_.empty() && has_room()) {
    queue_to_sq(op);
    return;
  }
  ++stats_.backlogged;
  backlog_.push(op);
}

void EventLoop::queue_to_sq(Operation* op) noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // has_room() guaranteed one
  const std::uint32_t remaining = op->len - op->done;
  switch (op->opcode) {
    case IORING_OP_READ:
      io_uring_prep_read(sqe, op->fd, op->buf + op->done, remaining, op->offset + op->done);
      break;
    case IORING_OP_WRITE:
      io_uring_prep_write(sqe, op->fd, op->buf + op->done, remaining, op->offset + op->done);
      break;
    case IORING_OP_READV:  // never resubmitted after a transfer: done stays 0
      io_uring_prep_readv(sqe, op->fd, reinterpret_cast<const struct iovec*>(op->buf), op->len,
                          op->offset);
      break;
    default: io_uring_prep_fsync(sqe, op->fd, op->fsync_flags); break;
  }
  io_uring_sqe_set_data(sqe, op);
  ++queued_in_sq_;
}

void EventLoop::drain_backlog() noexcept {
  while (!backlog_.empty() && has_room()) queue_to_sq(backlog_.pop());
}

std::size_t EventLoop::poll(bool block) {
  drain_backlog();
  // A blocking wait only makes sense when something will complete.
  unsigned wait_nr = (block && in_kernel_ + queued_in_sq_ > 0) ? 1 : 0;
  std::size_t dispatched = 0;
  if (wait_nr > 0 && syncs_in_flight_ > 0 && sync_spin_ns_ > 0) {
    // An fsync is outstanding: poll for a while before sleeping. A virtual
    // CPU that goes idle can take milliseconds to notice the completion
    // (measured: an fdatasync of ~0.1 ms took ~4 ms with the CPU idle).
    if (queued_in_sq_ > 0) {
      ++stats_.enters;
      const int ret = io_uring_submit(&ring_);
      if (ret > 0) {
        stats_.submitted += static_cast<unsigned>(ret);
        in_kernel_ += static_cast<unsigned>(ret);
        queued_in_sq_ -= static_cast<unsigned>(ret);
      }
    }
    const auto start = std::chrono::steady_clock::now();
    while (io_uring_cq_ready(&ring_) == 0 &&
           std::chrono::steady_clock::now() - start < std::chrono::nanoseconds(sync_spin_ns_)) {
      ++stats_.spin_polls;
      (void)io_uring_get_events(&ring_);  // runs deferred completion work
    }
    if (io_uring_cq_ready(&ring_) > 0) wait_nr = 0;
  }
  for (;;) {
    if (queued_in_sq_ == 0 && wait_nr == 0) break;  // nothing to enter the kernel for
    if (wait_nr > 0 && io_uring_cq_ready(&ring_) > 0) wait_nr = 0;
    ++stats_.enters;
    int ret = io_uring_submit_and_wait(&ring_, wait_nr);
    if (ret >= 0) {
      stats_.submitted += static_cast<unsigned>(ret);
      in_kernel_ += static_cast<unsigned>(ret);
      queued_in_sq_ -= static_cast<unsigned>(ret);
      break;
    }
    if (ret == -EINTR) continue;
    if (ret == -EBUSY || ret == -EAGAIN) {
      // The kernel wants completions reaped before it takes more work.
      std::size_t n = reap();
      dispatched += n;
      if (n > 0) wait_nr = 0;
      continue;
    }
    // Any other failure of io_uring_enter: fail every operation not yet in
    // the kernel with that error (their waiters get it at co_await) rather
    // than leave them queued against frames that may go away.
    dispatched += fail_unsubmitted(ret);
    break;
  }
  dispatched += reap();
  return dispatched;
}

std::size_t EventLoop::fail_unsubmitted(int err) noexcept {
  std::size_t n = 0;
  // SQEs the kernel has not consumed: from its head to our local tail (liburing
  // maps SQ slots to SQEs one to one). Turn each into a harmless NOP.
  const unsigned mask = ring_.sq.ring_mask;
  for (unsigned i = *ring_.sq.khead; i != ring_.sq.sqe_tail; ++i) {
    io_uring_sqe* sqe = &ring_.sq.sqes[i & mask];
    const bool wake = sqe->user_data == kWakeTag;
    auto* op =
        wake ? nullptr : reinterpret_cast<Operation*>(static_cast<std::uintptr_t>(sqe->user_data));
    if (wake) wake_armed_ = false;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, nullptr);
    if (op) {
      op->result = err;
      complete(op);
      ++n;
    }
  }
  while (Operation* op = backlog_.pop()) {
    op->result = err;
    complete(op);
    ++n;
  }
  return n;
}

void EventLoop::complete(Operation* op) noexcept {
  --stats_.in_flight;
  if (op->opcode == IORING_OP_FSYNC) --syncs_in_flight_;
  ++stats_.completed;
  // Posting never resumes: the waiter runs on the Scheduler's next turn. A
  // failure to grow the ready queue (out of memory) terminates, as noexcept.
  scheduler_->post_local(op->waiter);
}

void EventLoop::arm_wake(int eventfd) noexcept {
  if (wake_armed_ || !ring_open_) return;
  io_uring_sqe* sqe = has_room() ? io_uring_get_sqe(&ring_) : nullptr;
  if (sqe == nullptr) return;  // full: the wait ends with an I/O completion instead
  io_uring_prep_poll_add(sqe, eventfd, POLLIN);
  sqe->user_data = kWakeTag;
  ++queued_in_sq_;
  wake_armed_ = true;
  wake_fd_ = eventfd;
}

bool EventLoop::take_wake_fired() noexcept { return std::exchange(wake_fired_, false); }

void EventLoop::register_eventfd(int eventfd) {
  if (!ring_open_ || eventfd_registered_) return;
  const int ret = io_uring_register_eventfd(&ring_, eventfd);
  if (ret < 0) {
    throw Error(ErrorCode::kIoError,
                std::string("io_uring_register_eventfd failed: ") + std::strerror(-ret), -ret);
  }
  eventfd_registered_ = true;
}

void EventLoop::unregister_eventfd() noexcept {
  if (!ring_open_ || !eventfd_registered_) return;
  (void)io_uring_unregister_eventfd(&ring_);  // the ring's exit drops it anyway
  eventfd_registered_ = false;
}

bool EventLoop::completions_ready() const noexcept {
  return ring_open_ && io_uring_cq_ready(&ring_) > 0;
}

std::size_t EventLoop::submit() {
  drain_backlog();
  if (queued_in_sq_ == 0) return 0;
  int ret;
  do {
    ++stats_.enters;
    ++stats_.early_submits;
    ret = io_uring_submit(&ring_);
  } while (ret == -EINTR);
  if (ret <= 0) return 0;  // -EBUSY, -EAGAIN, ...: the next poll deals with it
  const auto n = static_cast<unsigned>(ret);
  stats_.submitted += n;
  in_kernel_ += n;
  queued_in_sq_ -= n;
  return n;
}

std::size_t EventLoop::reap() noexcept {
  unsigned head;
  io_uring_cqe* cqe;
  unsigned seen = 0;
  std::size_t finished = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++seen;
    if (cqe->user_data == kWakeTag) {  // the eventfd poll: another thread posted
      wake_armed_ = false;
      wake_fired_ = true;
      continue;
    }
    auto* op = static_cast<Operation*>(io_uring_cqe_get_data(cqe));
    if (op && handle_completion(op, cqe->res)) ++finished;  // null: a neutralised NOP
  }
  io_uring_cq_advance(&ring_, seen);
  in_kernel_ -= seen;
  drain_backlog();
  return finished;
}

bool EventLoop::handle_completion(Operation* op, int res) noexcept {
  bool finished = true;
  if (res == -EAGAIN || res == -EINTR) {
    finished = false;
  } else if (res < 0) {
    op->result = res;
  } else if (op->opcode == IORING_OP_FSYNC) {
    op->result = 0;
  } else if (op->opcode == IORING_OP_READV) {
    op->result = res;  // short or not: the caller goes on (len counts iovecs)
  } else {
    op->done += static_cast<std::uint32_t>(res);
    if (res == 0 && op->opcode == IORING_OP_WRITE && op->done < op->len) {
      op->result = -EIO;  // a write that makes no progress would loop forever
    } else if (res > 0 && op->done < op->len) {
      finished = false;  // short transfer: go again for the rest
    } else {
      op->result = static_cast<int>(op->done);  // complete, or a read at EOF
    }
  }
  if (finished) {
    complete(op);
    return true;
  }
  // Requeue behind the backlog; it is submitted on this or the next poll.
  ++stats_.resubmitted;
  backlog_.push(op);
  return false;
}

}  // namespace corobtree
