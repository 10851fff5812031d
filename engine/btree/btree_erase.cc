// BTree: erase and rebalancing (borrow from a sibling, merge, shrink the root).
#include "engine/btree/btree.h"

#include <corobtree/error.h>

namespace corobtree {

using Mode = AsyncSharedMutex::Mode;

Task<void> BTree::fix_underflow(std::string_view key) {
  std::vector<Latched> path;
  AsyncSharedMutex::Guard root_guard;
  co_await descend_exclusive(key, 0, path, root_guard);
  co_await rebalance(path, path.size() - 1);
}

Task<bool> BTree::erase_locked(std::string_view key) {
  const WriteWindow window(*this);
  check_key(key);
  std::vector<Latched> path;
  AsyncSharedMutex::Guard root_guard;
  co_await descend_exclusive(key, 0, path, root_guard);
  Latched& leaf = path.back();
  Node n(leaf.page.data());
  const std::uint32_t pos = n.lower_bound(key);
  if (pos == n.count() || n.key(pos) != key) co_return false;
  const Node::Value old = n.value(pos);
  const BlockId old_overflow = old.overflow ? old.first_page : kInvalidBlockId;
  n.remove(pos);
  leaf.page.mark_dirty();
  --state_.key_count;
  co_await rebalance(path, path.size() - 1);
  if (old_overflow != kInvalidBlockId) co_await free_overflow(old_overflow);
  co_return true;
}

namespace {

std::vector<std::byte> copy_cell(const Node& n, std::uint32_t i) {
  auto c = n.cell(i);
  return {c.begin(), c.end()};
}

}  // namespace

// Fixes an underfull path[level] by merging with or borrowing from a sibling,
// walking up while parents underflow in turn; shrinks the root when it is an
// inner node with a single child.
Task<void> BTree::rebalance(std::vector<Latched>& path, std::size_t level) {
  for (;;) {
    Latched& cur = path[level];
    Node n(cur.page.data());
    const BlockId cur_id = cur.page.page_id();
    if (cur_id == state_.root) {
      if (!n.is_leaf() && n.count() == 0) {
        check_link(cur_id, n.child(0), "child");
        state_.root = n.child(0);
        --state_.height;
        cur.latch.unlock();
        free_page(cur.page);
      }
      co_return;
    }
    if (!underflows(n) || level == 0) co_return;  // level 0 here: a safe node, untouched
    Latched& parent = path[level - 1];
    Node p(parent.page.data());
    const BlockId parent_id = parent.page.page_id();
    const std::uint32_t idx = parent.child_idx;
    if (p.count() == 0)
      corrupt(parent_id, "an inner node without separators has no sibling to offer");
    const PageType level_type = n.type();
    // A sibling the path holds latched (our own node included) would deadlock.
    const BlockId sibling = p.child(idx > 0 ? idx - 1 : idx + 1);
    check_link(parent_id, sibling, "child");
    check_not_held(path, parent_id, sibling);
    parent.page.mark_dirty();
    cur.page.mark_dirty();

    // Latch siblings left to right: with a left sibling, let go of ours first.
    Latched left;
    Latched right;
    std::uint32_t sep;  // parent cell between left and right
    if (idx > 0) {
      cur.latch.unlock();
      left = co_await latch_page(sibling, Mode::kExclusive);
      expect_type(left.page, parent_id, level_type, "child");
      cur.latch = co_await cur.page.latch().scoped_lock();
      sep = idx - 1;
    } else {
      right = co_await latch_page(sibling, Mode::kExclusive);
      expect_type(right.page, parent_id, level_type, "child");
      sep = idx;
    }
    PageGuard& lpage = idx > 0 ? left.page : cur.page;
    PageGuard& rpage = idx > 0 ? cur.page : right.page;
    lpage.mark_dirty();
    rpage.mark_dirty();
    Node l(lpage.data());
    Node r(rpage.data());
    const bool leaf = l.is_leaf();
    const std::string sep_key(p.key(sep));
    const std::uint32_t sep_cell_size = Node::inner_cell_size(sep_key.size());

    bool merge;
    if (leaf) {
      merge = l.used_bytes() + r.used_bytes() <= usable_ &&
              std::uint64_t{l.count()} + r.count() <= max_keys();
    } else {
      merge = l.used_bytes() + r.used_bytes() + sep_cell_size + page::kSlotSize <= usable_ &&
              std::uint64_t{l.count()} + r.count() + 1 <= max_keys();
    }

    if (merge) {
      if (leaf) {
        const BlockId after = r.next();
        if (after != kInvalidBlockId) {
          check_link(rpage.page_id(), after, "next leaf");
          check_not_held(path, rpage.page_id(), after);
          if (after == lpage.page_id() || after == rpage.page_id()) {
            corrupt(rpage.page_id(), "the leaf chain loops back to page " + std::to_string(after));
          }
        }
        for (std::uint32_t i = 0; i < r.count(); ++i) l.insert_cell(l.count(), r.cell(i));
        l.set_next(after);
        if (after != kInvalidBlockId) {
          Latched next = co_await latch_page(after, Mode::kExclusive);  // further right
          expect_type(next.page, rpage.page_id(), PageType::kLeaf, "next leaf");
          Node(next.page.data()).set_prev(lpage.page_id());
          next.page.mark_dirty();
        }
      } else {
        l.insert_cell(l.count(), Node::inner_cell(sep_key, r.child(0)));
        for (std::uint32_t i = 0; i < r.count(); ++i) l.insert_cell(l.count(), r.cell(i));
      }
      p.remove(sep);
      if (idx > 0) {
        cur.latch.unlock();
        free_page(cur.page);
      } else {
        right.latch.unlock();
        free_page(right.page);
      }
      --level;  // the parent lost a cell: it may underflow now
      continue;
    }

    // Borrow: move cells toward the underfull side until it is not underfull
    // (the sibling is rich, or the merge would have fit).
    Node& poor = idx > 0 ? r : l;
    Node& rich = idx > 0 ? l : r;
    std::string new_sep;
    do {
      if (rich.count() == 0) {
        corrupt((idx > 0 ? lpage : rpage).page_id(), "a sibling to borrow from is empty");
      }
      if (leaf) {
        if (idx > 0) {  // rich left: its last cell becomes our first
          poor.insert_cell(0, copy_cell(rich, rich.count() - 1));
          rich.remove(rich.count() - 1);
          new_sep = std::string(poor.key(0));
        } else {  // rich right: its first cell becomes our last
          poor.insert_cell(poor.count(), copy_cell(rich, 0));
          rich.remove(0);
          new_sep = std::string(rich.key(0));
        }
      } else {
        const std::string down = new_sep.empty() ? sep_key : new_sep;
        if (idx > 0) {  // rotate right through the parent
          const std::uint32_t last = rich.count() - 1;
          poor.insert_cell(0, Node::inner_cell(down, poor.child(0)));
          poor.set_child(0, rich.child(last + 1));
          new_sep = std::string(rich.key(last));
          rich.remove(last);
        } else {  // rotate left through the parent
          poor.insert_cell(poor.count(), Node::inner_cell(down, rich.child(0)));
          new_sep = std::string(rich.key(0));
          rich.set_child(0, rich.child(1));
          rich.remove(0);
        }
      }
    } while (underflows(poor) && rich.count() > 1 && !underflows(rich));
    if (underflows(rich))
      corrupt(lpage.page_id(), "internal error: a borrow left a sibling underfull");
    // New separator between left and right: may be longer than the old one.
    std::vector<std::byte> cell = Node::inner_cell(new_sep, rpage.page_id());
    p.remove(sep);
    if (p.fits(static_cast<std::uint32_t>(cell.size()))) {
      p.insert_cell(sep, cell);
    } else {
      co_await split_and_insert(path, level - 1, std::move(cell), sep);
    }
    // A shorter separator may leave the parent underfull in turn.
    --level;
  }
}

}  // namespace corobtree
