// DatabaseImpl::compact: rewrites the database into a packed copy and swaps
// it in (docs/engine.md, "Compaction").
//
// The order, and why every crash point is safe:
//   1. Under the writer mutex, checkpoint: the data file and its meta page
//      hold every commit (checkpoint LSN L) and the log holds nothing newer
//      than L (on disk it may still hold the old generation, whose last
//      checkpoint record is L: recovery ignores it against any file whose
//      meta page says L).
//   2. Stream the tree in key order into NAME.compacting through a
//      PackedTreeWriter, opened like the data file (DiskManager::open, so it
//      is locked from birth); write its meta pages (same database id, same
//      checkpoint LSN L, later sequence numbers, both slots); sync it. A crash
//      here leaves NAME untouched; the next compaction deletes the leftover.
//   3. Wait for the reads in flight (BTree::read_gate, exclusively), rename
//      the copy over NAME and sync the directory (DiskManager::rename_to). A
//      crash before the rename finds the old file, after it the copy: both
//      hold the same contents as of L, beside a log with nothing newer.
//   4. In memory: drop the pool's cached pages (all clean), forward the data
//      file to the copy (ReplaceableDisk), adopt its tree state and meta page
//      (Checkpointer::data_file_replaced), close the old file. The next
//      commits log into the generation the checkpoint started, against the copy.
#include <optional>

#include <fcntl.h>
#include <unistd.h>

#include <corobtree/error.h>
#include "engine/btree/packed_tree_writer.h"
#include "engine/db/database_impl.h"
#include "io/aligned_buffer.h"

namespace corobtree {

Task<std::unique_ptr<DiskManager>> DatabaseImpl::build_packed_copy(std::string tmp, Meta& meta) {
  ::unlink(tmp.c_str());  // left by a crash during an earlier compaction
  DiskOptions o;
  o.page_size = disk_->page_size();
  o.backend = disk_->backend();
  o.use_env = false;
  o.direct_io = options_.direct_io;
  o.create_if_missing = true;
  o.lock_file = true;  // locked before the rename makes it visible as NAME
  std::unique_ptr<DiskManager> out = DiskManager::open(tmp, o);
  if (options_.wrap_disk) out = options_.wrap_disk(std::move(out));
  meta = log_->meta();  // the database id and checkpoint LSN stay
  PackedTreeWriter writer(*out, tree_->state().minimum_degree, meta.checkpoint_lsn);
  {
    TreeCursor c(*tree_, ScanOptions{});  // no read-ahead: each read's error is compact()'s
    bool ok = co_await c.first();
    while (ok) {
      co_await writer.add(c.key(), c.value());
      ok = co_await c.next();
    }
  }
  if (writer.keys() != tree_->state().key_count) {
    throw Error(ErrorCode::kCorruption,
                "'" + path_ + "': a scan found " + std::to_string(writer.keys()) +
                    " keys, the tree counts " + std::to_string(tree_->state().key_count),
                0, path_);
  }
  meta.state = co_await writer.finish();
  meta.page_size = o.page_size;
  // Both slots, so that either alone describes the file (as after close()).
  AlignedBuffer buf(o.page_size);
  const std::uint64_t base = meta.sequence;
  for (std::uint64_t i = 1; i <= 2; ++i) {
    meta.sequence = base + i;
    const BlockId slot = meta.sequence % 2;
    encode_meta(meta, slot, buf.span());
    co_await out->write_block(slot, buf.span());
  }
  co_await out->sync();
  co_return out;
}

Task<void> DatabaseImpl::compact() {
  check_open();
  // The writer mutex once no backup copies the data file (it waits for one).
  AsyncLockGuard writer = co_await lock_data_file();
  co_await log_step_locked(LogStep::kCheckpoint);
  std::exception_ptr error;

  // Until the rename, a failure leaves the database as it was.
  const std::string tmp = path_ + ".compacting";
  std::unique_ptr<DiskManager> copy;
  Meta meta;
  try {
    copy = co_await build_packed_copy(tmp, meta);
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    ::unlink(tmp.c_str());
    std::rethrow_exception(error);
  }

  // No read may span the swap: wait for those in flight, hold off new ones.
  const AsyncSharedMutex::Guard readers = co_await tree_->read_gate().scoped_lock();
  co_await pool_->readahead_drained();       // discard_all wants no read in flight
  std::optional<BTree::WriteWindow> window;  // and lock-free readers retry until it ends
  try {
    window.emplace(*tree_);  // (may throw std::bad_alloc before any change)
    copy->rename_to(path_);
  } catch (...) {
    error = std::current_exception();
  }
  if (error && copy->path() != path_) {  // the rename failed: nothing changed
    copy.reset();
    ::unlink(tmp.c_str());
    std::rethrow_exception(error);
  }
  // NAME is the copy now (a failed directory sync aside, which stops the
  // database below: reopening finds whichever file the name reached).
  try {
    pool_->discard_all();
    std::unique_ptr<DiskManager> old = disk_->replace(std::move(copy));
    old->close();
    tree_->replace_state(meta.state.tree);
    log_->data_file_replaced(meta);
  } catch (...) {
    if (!error) error = std::current_exception();
  }
  if (error) {
    stop(error);
    std::rethrow_exception(error);
  }
}

}  // namespace corobtree
