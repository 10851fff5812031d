// BTree::validate: every invariant of the tree and the free list, checked on
// the on-disk copy of each page after a flush.
#include <unordered_set>

#include <corobtree/error.h>
#include "engine/btree/btree.h"
#include "io/aligned_buffer.h"

namespace corobtree {

namespace {

struct Visit {
  BlockId id;
  std::uint32_t depth;
  std::optional<std::string> lo;  // inclusive
  std::optional<std::string> hi;  // exclusive
};

std::string describe(BlockId id) { return "page " + std::to_string(id); }

}  // namespace

Task<ValidationReport> BTree::validate() {
  AsyncLockGuard writer = co_await writer_mutex_.scoped_lock();
  co_await pool_.flush_all();
  DiskManager& disk = pool_.disk();
  ValidationReport r;
  r.height = state_.height;
  const std::uint64_t pages = disk.block_count();
  std::vector<std::uint8_t> seen(pages, 0);
  if (pages >= 2) seen[0] = seen[1] = 1;  // meta pages
  auto problem = [&r](std::string s) {
    if (r.problems.size() < 100) r.problems.push_back(std::move(s));
  };
  AlignedBuffer buf(page_size_);
  const auto bytes = buf.span();

  // Reads page `id` from disk and checks its checksum and layout; false if unusable.
  auto claim = [&](BlockId id, const char* what) -> bool {
    if (id >= pages) {
      problem(std::string(what) + " " + std::to_string(id) + " is past the end of the file (" +
              std::to_string(pages) + " pages)");
      return false;
    }
    if (seen[id]) {
      problem(describe(id) + " is reachable twice (" + what + ")");
      return false;
    }
    seen[id] = 1;
    return true;
  };

  std::vector<BlockId> leaves;
  std::vector<std::pair<BlockId, BlockId>> leaf_links;  // (prev, next) per leaf
  std::uint64_t used_total = 0;
  std::uint64_t nodes = 0;
  std::vector<Visit> stack;
  stack.push_back(Visit{state_.root, 0, std::nullopt, std::nullopt});
  while (!stack.empty()) {
    Visit v = std::move(stack.back());
    stack.pop_back();
    if (!claim(v.id, "tree node")) continue;
    try {
      co_await pool_.read_stored(v.id, bytes);
      page::verify(v.id, bytes, disk.path());
    } catch (const Error& e) {
      problem(e.what());
      continue;
    }
    Node n(bytes);
    const bool want_leaf = v.depth + 1 == state_.height;
    if (n.type() != (want_leaf ? PageType::kLeaf : PageType::kInner)) {
      problem(describe(v.id) + " at depth " + std::to_string(v.depth) + " is a " +
              std::string(page_type_name(n.type())) + ", expected a " +
              (want_leaf ? "leaf" : "inner node") + " (all leaves must be at depth " +
              std::to_string(state_.height - 1) + ")");
      continue;
    }
    ++nodes;
    used_total += n.used_bytes();
    const bool is_root = v.id == state_.root;
    if (!is_root && underflows(n)) {
      problem(describe(v.id) + " is underfull: " + std::to_string(n.count()) + " keys, " +
              std::to_string(n.used_bytes()) + " of " + std::to_string(usable_) + " bytes");
    }
    if (n.count() > max_keys()) {
      problem(describe(v.id) + " is overfull: " + std::to_string(n.count()) +
              " keys > 2t-1 = " + std::to_string(max_keys()));
    }
    if (!n.is_leaf() && n.count() == 0) {
      problem(describe(v.id) + " is an inner node without separators");
    }
    for (std::uint32_t i = 0; i < n.count(); ++i) {
      const std::string_view k = n.key(i);
      if (i > 0 && !(n.key(i - 1) < k)) {
        problem(describe(v.id) + ": keys out of order at slot " + std::to_string(i));
      }
      if ((v.lo && k < *v.lo) || (v.hi && !(k < *v.hi))) {
        problem(describe(v.id) + ": key at slot " + std::to_string(i) +
                " lies outside its parent's separator bounds");
      }
    }
    if (n.is_leaf()) {
      leaves.push_back(v.id);
      leaf_links.emplace_back(n.prev(), n.next());
      r.keys += n.count();
      ++r.leaves;
      for (std::uint32_t i = 0; i < n.count(); ++i) {
        const Node::Value val = n.value(i);
        if (!val.overflow) continue;
        std::uint64_t got = 0;
        BlockId id = val.first_page;
        AlignedBuffer ob(page_size_);
        while (id != kInvalidBlockId) {
          if (!claim(id, "overflow page")) break;
          try {
            co_await pool_.read_stored(id, ob.span());
            page::verify(id, ob.span(), disk.path());
          } catch (const Error& e) {
            problem(e.what());
            break;
          }
          if (page::type(ob.data()) != PageType::kOverflow) {
            problem(describe(id) + " in an overflow chain is a " +
                    std::string(page_type_name(page::type(ob.data()))));
            break;
          }
          ++r.overflow_pages;
          got += PageHeader::Payload::get(ob.data());
          id = PageHeader::Link0::get(ob.data());
        }
        if (got != val.length) {
          problem(describe(v.id) + ": overflow value at slot " + std::to_string(i) + " has " +
                  std::to_string(got) + " bytes, expected " + std::to_string(val.length));
        }
      }
    } else {
      ++r.inner_nodes;
      // Push children right to left so leaves are visited in key order.
      for (std::uint32_t i = n.count() + 1; i > 0; --i) {
        const std::uint32_t c = i - 1;
        Visit child{n.child(c), v.depth + 1, v.lo, v.hi};
        if (c > 0) child.lo = std::string(n.key(c - 1));
        if (c < n.count()) child.hi = std::string(n.key(c));
        stack.push_back(std::move(child));
      }
    }
  }
  // The leaf chain, in key order, both ways.
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const BlockId want_prev = i == 0 ? kInvalidBlockId : leaves[i - 1];
    const BlockId want_next = i + 1 == leaves.size() ? kInvalidBlockId : leaves[i + 1];
    if (leaf_links[i].first != want_prev || leaf_links[i].second != want_next) {
      problem("leaf chain broken at " + describe(leaves[i]) + ": prev/next are " +
              std::to_string(leaf_links[i].first) + "/" + std::to_string(leaf_links[i].second) +
              ", expected " + std::to_string(want_prev) + "/" + std::to_string(want_next));
    }
  }
  if (r.keys != state_.key_count) {
    problem("the tree holds " + std::to_string(r.keys) + " keys but the key count says " +
            std::to_string(state_.key_count));
  }
  // The free list: free pages only, none in the tree, no cycle, right length.
  BlockId id = state_.free_head;
  while (id != kInvalidBlockId) {
    if (!claim(id, "free-list page")) break;
    try {
      co_await pool_.read_stored(id, bytes);
      page::verify(id, bytes, disk.path());
    } catch (const Error& e) {
      problem(e.what());
      break;
    }
    if (page::type(bytes.data()) != PageType::kFree) {
      problem(describe(id) + " is on the free list but is a " +
              std::string(page_type_name(page::type(bytes.data()))));
      break;
    }
    ++r.free_pages;
    id = PageHeader::Link0::get(bytes.data());
  }
  if (r.free_pages != state_.free_pages) {
    problem("the free list has " + std::to_string(r.free_pages) + " pages but the count says " +
            std::to_string(state_.free_pages));
  }
  for (BlockId p = 2; p < pages; ++p) {
    if (!seen[p]) problem(describe(p) + " is leaked: neither in the tree nor on the free list");
  }
  r.fill_factor = nodes == 0 ? 0.0
                             : static_cast<double>(used_total) /
                                   (static_cast<double>(nodes) * static_cast<double>(usable_));
  co_return r;
}

}  // namespace corobtree
