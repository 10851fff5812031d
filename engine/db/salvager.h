// Salvager: the engine of salvage (include/corobtree/salvage.h), shared by
// engine/db/salvage_pages.cc (the first pass over the damaged file: page
// size, meta pages, log, every page, the walks) and engine/db/salvage.cc
// (pairs, log replay, the new database). docs/engine.md, "Salvage".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <corobtree/salvage.h>
#include <corobtree/task.h>

#include "engine/db/salvage_log.h"
#include "engine/format/meta.h"
#include "io/disk_manager.h"

namespace corobtree {

inline bool valid_page_size(std::uint64_t ps) {
  return ps >= kMinPageSize && ps <= kMaxPageSize && (ps & (ps - 1)) == 0;
}

[[noreturn]] void not_a_database(const std::string& path, const std::string& why);

// The page size of the file `path` of `size` bytes (docs/engine.md,
// "Salvage", step 1). Throws kCorruption if no size fits, kNotSupported for
// another format version.
std::uint32_t probe_salvage_page_size(const std::string& path, std::uint64_t size);

// What the first pass learned about one page.
enum class Seen : std::uint8_t { kMeta, kUnused, kBad, kLeaf, kInner, kOverflow, kFree };

// A pair found in a leaf, before duplicates are resolved.
struct Candidate {
  std::string key;
  std::string value;  // inline value
  BlockId page = kInvalidBlockId;
  std::uint64_t lsn = 0;
  BlockId overflow = kInvalidBlockId;  // first overflow page, if the value is there
  std::uint32_t length = 0;            // the overflow value's length
};

struct OverflowPage {
  BlockId next;
  std::uint32_t payload;
  // A value's chain read it already: a page serves one value only, so the
  // values read never hold more bytes than the file does.
  bool claimed = false;
};

// One salvage run (include/corobtree/salvage.h, docs/engine.md "Salvage"):
// salvage_pages.cc reads and examines the pages and walks them; salvage.cc
// resolves the pairs, applies the log and writes the new database.
// Thread-safety: one run on one thread (its DiskManager's).
class Salvager {
 public:
  Salvager(std::string path, SalvageOptions options) : path_(std::move(path)), options_(options) {}

  Task<SalvageReport> run(std::string out);

 private:
  void problem(std::string_view what) {
    ++r_.problem_count;
    // Without the "corobtree: corruption: " that Error::what() starts with.
    for (const std::string_view prefix : {"corobtree: ", "corruption: "}) {
      if (what.substr(0, prefix.size()) == prefix) what.remove_prefix(prefix.size());
    }
    if (r_.problems.size() < options_.max_listed) r_.problems.emplace_back(what);
  }
  Task<void> read_meta();
  Task<void> read_log();
  Task<void> read_pages();
  void examine(BlockId id, std::span<const std::byte> p, const std::string& read_error);
  void read_leaf(BlockId id, const std::byte* d);
  void walk_free_list();
  void walk_tree();
  void count_unreadable();
  Task<std::vector<std::pair<std::string, std::string>>> resolve();
  bool chain_intact(const Candidate& c, std::string& why) const;
  Task<bool> read_chain(const Candidate& c, std::string& value);
  Task<void> read_page(BlockId id, std::span<std::byte> out);
  void apply_log(std::vector<std::pair<std::string, std::string>>& pairs);
  Task<void> write_out(std::string out, std::vector<std::pair<std::string, std::string>> pairs);

  const std::string path_;
  const SalvageOptions options_;
  SalvageReport r_;
  std::unique_ptr<DiskManager> disk_;
  std::uint32_t page_size_ = 0;
  std::uint64_t pages_ = 0;  // pages examined: the file's, or more from a checkpoint's images
  std::optional<Meta> meta_;
  SalvagedLog log_;
  std::uint64_t replay_after_ = 0;  // apply the log's transactions newer than this
  std::vector<Seen> seen_;
  std::vector<bool> reachable_;
  std::vector<bool> known_free_;
  std::unordered_map<BlockId, std::vector<BlockId>> children_;
  std::unordered_map<BlockId, OverflowPage> overflow_;
  std::unordered_map<BlockId, BlockId> free_next_;
  std::vector<Candidate> candidates_;
  std::map<BlockId, std::string> reasons_;  // why the first unreadable pages are
};

}  // namespace corobtree
