// Lock-free reads of a BTree from any thread: point lookups and forward
// scans served from cached pages without a latch, a pin or a coroutine, in
// the style of optimistic lock coupling (vmcache's GuardO, LeanStore's
// optimistic latches).
//
// A read notes the tree's write-window number (BTree::WriteWindow; even: no
// writer inside), then walks from the published root: for each page it takes
// the frame and its version (BufferPool::read_begin), reads what it needs,
// and validates the frame's version (BufferPool::read_valid) before following
// a child or a sibling link. At the end the window number must be unchanged:
// then no writer touched the tree and no frame changed hands while the read
// looked, so what it copied out is a consistent state of the tree. On a
// conflict it restarts; after a few restarts, or at once when a page is not
// cached, a value lives in overflow pages, the scan is reverse, or anything
// looks wrong, it answers kFallback and the caller takes the engine's path
// (which loads pages, shares reads, and reports errors). No guard is ever
// held across a co_await: there is none here.
//
// Reading a page that a writer changes meanwhile sees torn bytes: every
// offset and length is checked against the page before it is used (garbage
// in, restart out), so a torn read never leaves the page or loops. The reads
// are deliberate races that validation discards; ThreadSanitizer is told to
// ignore them (and only them).
//
// Thread-safety: any thread, concurrently with the engine thread's writers,
// evictions and checkpoints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/cursor.h>
#include <corobtree/pinned_value.h>

#include "io/disk_manager.h"

namespace corobtree {

class BTree;
class ViewPins;

enum class Optimistic : unsigned char { kDone, kFallback };

// kDone: `found` says whether `key` exists, and if it does `value` holds its
// value (assigned, so its capacity is reused: no allocation when it
// suffices). On kFallback `value` is unspecified.
// REQUIRES: key.size() <= tree.max_key_size().
Optimistic optimistic_get(BTree& tree, std::string_view key, std::string& value, bool& found);

// optimistic_get() without the copy: kDone: `found` says whether `key`
// exists; if it does, `out` pins the leaf's buffer and views the value in it
// (include/corobtree/pinned_value.h). kFallback also when every pin slot is
// in use. Except on a hit, `out` ends up reset (a pin it held is reused or
// released).
Optimistic optimistic_get_pinned(BTree& tree, std::string_view key, PinnedValue& out, bool& found);

// kDone: `out` holds up to `limit` pairs of the range in scan order.
Optimistic optimistic_scan(BTree& tree, const ScanOptions& options, std::size_t limit,
                           std::vector<std::pair<std::string, std::string>>& out);

// A consistent copy of the leaf holding the first entry >= key, walking right
// past leaves that hold none (TreeCursor's forward seek). kDone: `found` says
// whether such an entry exists; if so `page` holds the leaf's bytes, `leaf_id`
// its page and `pos` the entry's slot. kFallback also when the leaf holds a
// value in overflow pages (the cursor's copy needs those read).
// `page` keeps its capacity (pass in a spare buffer: no allocation); it is
// unspecified unless the result is kDone with `found`.
//
// Zero-copy: with `pins` set (the pool's, BufferPool::view_pins()) the leaf's
// buffer is pinned instead of copied when a pin slot is free: then `slot` is
// a newly claimed slot naming it (the caller releases it) and `data` points
// at the pinned bytes, which stay as they are until the slot is released
// (engine/pager/view_pins.h). Else `slot` is kNoSlot and `data` is
// page.data(). Both are unspecified unless the result is kDone with `found`
// (no slot is held then).
struct LeafCopy {
  std::vector<std::byte> page;
  BlockId leaf_id = kInvalidBlockId;
  std::uint32_t pos = 0;
  bool found = false;
  std::uint64_t seq = 0;  // the tree's write-window number the copy was validated under
  ViewPins* pins = nullptr;
  std::uint32_t slot = UINT32_MAX;  // ViewPins::kNoSlot
  std::byte* data = nullptr;
};
Optimistic optimistic_seek(BTree& tree, std::string_view key, LeafCopy& out);

// The leaf after a copy (`next`: the copy's right link), walking right past
// leaves that hold nothing, as a LeafCopy at its first entry. Only while no
// writer has entered the tree since the copy was made (`seq`: its
// LeafCopy::seq), so that the link still names the next leaf; else kFallback
// (then seek past the copy's last key instead).
Optimistic optimistic_next_leaf(BTree& tree, std::uint64_t seq, BlockId next, LeafCopy& out);

// Read-ahead's list (TreeCursor): the ids of up to `max` leaves after
// (`reverse`: before) the leaf whose range holds `key` (`at_end`: the last
// leaf), nearest first, from that leaf's parent and then its neighbours
// while they are cached (none past the grandparent's edge, none in a one-leaf
// tree). `out` keeps its capacity. kFallback when an inner page on the way is
// not cached or a writer kept interfering. `uncached_parents`: when the
// parent after the last one listed is not cached, it and the next few (up to
// 16, within the grandparent) that are not cached either, so that the caller
// can read them ahead and a later list goes on into them (else empty; keeps
// its capacity).
Optimistic optimistic_leaves_near(BTree& tree, std::string_view key, bool at_end, bool reverse,
                                  std::size_t max, std::vector<BlockId>& out,
                                  std::vector<BlockId>& uncached_parents);

}  // namespace corobtree
