// salvage (include/corobtree/salvage.h): reads every page of a damaged file
// without trusting its tree, keeps the pairs of every leaf that verifies, and
// bulk-loads them into a new database. docs/engine.md, "Salvage".
#include <corobtree/salvage.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/when_all.h>

#include "engine/db/salvage_log.h"
#include "engine/format/meta.h"
#include "engine/format/page_format.h"
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"

namespace corobtree {

namespace {

bool valid_page_size(std::uint64_t ps) {
  return ps >= kMinPageSize && ps <= kMaxPageSize && (ps & (ps - 1)) == 0;
}

bool all_zero(std::span<const std::byte> p) {
  return std::all_of(p.begin(), p.end(), [](std::byte b) { return b == std::byte{0}; });
}

[[noreturn]] void not_a_database(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kCorruption, "'" + path + "' is not a corobtree database: " + why, 0,
              path);
}

// The page size of `path`: the one a meta page's header names (block 0, else
// block 1 at each possible size), unless none of the first pages verify at
// that size and some do at another (the checksum covers the page id, so a
// wrong size almost never verifies). Plain preads: the file is not open yet.
std::uint32_t probe_page_size(const std::string& path, std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw errno_error(errno, "open", path);
  auto read_at = [&](std::uint64_t off, std::byte* out, std::size_t n) {
    return off + n <= size &&
           ::pread(fd, out, n, static_cast<off_t>(off)) == static_cast<ssize_t>(n);
  };
  std::uint32_t named = 0;  // by a meta page header
  std::uint32_t version = kFormatVersion;
  std::byte h[MetaLayout::kProbeBytes];
  for (std::uint64_t off = 0; off <= kMaxPageSize; off = off == 0 ? kMinPageSize : off * 2) {
    if (!read_at(off, h, sizeof h) || MetaLayout::Magic::get(h) != kMagic) continue;
    const std::uint32_t ps = MetaLayout::PageSize::get(h);
    if (!valid_page_size(ps) || (off != 0 && ps != off)) continue;
    named = ps;
    version = MetaLayout::Version::get(h);
    break;
  }
  // Pages among the first 34 whose checksum verifies, at each size.
  std::map<std::uint32_t, std::uint64_t> verified;
  std::uint32_t best = 0;
  std::vector<std::byte> page;
  for (std::uint32_t ps = kMinPageSize; ps <= kMaxPageSize; ps *= 2) {
    page.resize(ps);
    std::uint64_t& n = verified[ps];
    for (BlockId id = 0; id < 34 && read_at(id * ps, page.data(), ps); ++id) {
      const auto t = page::type(page.data());
      if (PageHeader::Crc::get(page.data()) == page::checksum(id, page) && t >= PageType::kMeta &&
          t <= PageType::kFree) {
        ++n;
      }
    }
    if (n > 0 && (best == 0 || n > verified[best])) best = ps;
  }
  ::close(fd);
  const std::uint32_t found = named != 0 && (verified[named] > 0 || best == 0) ? named : best;
  if (found == 0) {
    not_a_database(path, "no meta page header and no page whose checksum verifies, at any size");
  }
  // A damaged version field is damage, not another format: only a meta page
  // that verifies speaks for the version.
  if (found == named && version != kFormatVersion && verified[named] > 0) {
    throw Error(ErrorCode::kNotSupported,
                "'" + path + "' has format version " + std::to_string(version) +
                    "; this library reads version " + std::to_string(kFormatVersion),
                0, path);
  }
  return found;
}

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

Task<void> Salvager::read_meta() {
  AlignedBuffer buf(page_size_);
  for (BlockId id : {BlockId{0}, BlockId{1}}) {
    if (id >= disk_->block_count()) break;
    bool read = true;
    try {
      co_await disk_->read_block(id, buf.span());
    } catch (const Error&) {
      read = false;
    }
    if (!read) continue;
    const DecodedMeta d = decode_meta(id, buf.span());
    if (d.status != MetaStatus::kValid) continue;
    ++r_.meta_pages_valid;
    if (!meta_ || d.meta.sequence > meta_->sequence) meta_ = d.meta;
  }
  if (!meta_) {
    problem("no valid meta page: the tree's root, height, key count and free list are unknown");
  }
}

Task<void> Salvager::read_log() {
  const std::string log_path = path_ + "-wal";
  struct stat st;
  if (::stat(log_path.c_str(), &st) != 0) co_return;
  r_.log_found = true;
  if (!options_.use_log) co_return;
  DiskOptions o;
  o.page_size = page_size_;
  o.backend = options_.backend;
  o.create_if_missing = false;
  std::unique_ptr<DiskManager> file = DiskManager::open(log_path, o);
  log_ = co_await read_salvage_log(*file, meta_ ? meta_->database_id : 0);
  file->close();
  r_.log_used = log_.header;
  if (!log_.header) {
    // A log whose header fails (damaged, or another database's) holds nothing
    // recovery would replay either; say so, since it may have held commits.
    if (log_.written) {
      problem("the log '" + log_path +
              "' is not this database's or its header is damaged: its transactions, if any, "
              "are not applied");
    }
    co_return;
  }
  replay_after_ = meta_ ? meta_->checkpoint_lsn : 0;
  if (log_.checkpoint && (!meta_ || log_.checkpoint_lsn > meta_->checkpoint_lsn)) {
    // A checkpoint the data file may hold only in part: its images are the
    // pages as of its LSN, as recovery would copy them.
    Meta m = meta_ ? *meta_ : Meta{};
    m.page_size = page_size_;
    m.state = *log_.checkpoint;
    m.checkpoint_lsn = log_.checkpoint_lsn;
    m.database_id = log_.database_id;
    meta_ = m;
    replay_after_ = log_.checkpoint_lsn;
    r_.log_checkpoint_pages = log_.checkpoint_images.size();
  } else {
    log_.checkpoint_images.clear();
  }
}

// The first pass: every page, a batch of reads at a time.
Task<void> Salvager::read_pages() {
  // Pages past the file's end that only the log's images hold; at most one
  // per image, so nothing is sized by a number the log merely states.
  pages_ = disk_->block_count();
  const std::uint64_t limit = pages_ + log_.checkpoint_images.size();
  for (const auto& [id, image] : log_.checkpoint_images) {
    if (meta_ && id < meta_->state.page_count && id < limit) pages_ = std::max(pages_, id + 1);
  }
  seen_.assign(pages_, Seen::kUnused);
  reachable_.assign(pages_, false);
  known_free_.assign(pages_, false);
  constexpr std::uint64_t kBatch = 64;
  AlignedBuffer chunk(kBatch * page_size_);
  for (BlockId first = 0; first < pages_; first += kBatch) {
    const std::uint64_t n = std::min(kBatch, pages_ - first);
    auto page_at = [&](std::uint64_t i) {
      return std::span<std::byte>(chunk.data() + i * page_size_, page_size_);
    };
    std::vector<std::string> errors(n);
    std::vector<Task<void>> reads;
    for (std::uint64_t i = 0; i < n; ++i) reads.push_back(read_page(first + i, page_at(i)));
    bool failed = false;
    try {
      co_await when_all(std::move(reads));
    } catch (const Error&) {
      failed = true;
    }
    // A read error (a bad sector) costs its page only.
    for (std::uint64_t i = 0; failed && i < n; ++i) {
      try {
        co_await read_page(first + i, page_at(i));
      } catch (const Error& e) {
        errors[i] = e.what();
      }
    }
    for (std::uint64_t i = 0; i < n; ++i) examine(first + i, page_at(i), errors[i]);
  }
}

Task<void> Salvager::read_page(BlockId id, std::span<std::byte> out) {
  if (const auto it = log_.checkpoint_images.find(id); it != log_.checkpoint_images.end()) {
    std::memcpy(out.data(), it->second->data(), page_size_);
    co_return;
  }
  if (id >= disk_->block_count()) {
    std::memset(out.data(), 0, out.size());
    co_return;
  }
  co_await disk_->read_block(id, out);
}

void Salvager::examine(BlockId id, std::span<const std::byte> p, const std::string& read_error) {
  if (id < 2) {
    seen_[id] = Seen::kMeta;
    return;
  }
  const bool in_tree = !meta_ || id < meta_->state.page_count;
  std::string why = read_error;
  if (why.empty() && all_zero(p)) {
    // Past the meta page's count: allocated after its checkpoint, never used.
    if (!in_tree || !meta_) return;
    why = "page " + std::to_string(id) + " was never written (all zeros)";
  }
  if (why.empty()) {
    try {
      page::verify(id, p, path_);
    } catch (const Error& e) {
      why = e.what();
    }
  }
  if (!why.empty()) {
    seen_[id] = Seen::kBad;
    if (reasons_.size() < options_.max_listed) reasons_.emplace(id, std::move(why));
    return;
  }
  const std::byte* d = p.data();
  switch (page::type(d)) {
    case PageType::kLeaf:
      seen_[id] = Seen::kLeaf;
      read_leaf(id, d);
      break;
    case PageType::kInner: {
      seen_[id] = Seen::kInner;
      ++r_.inner_pages;
      const std::uint32_t n = PageHeader::SlotCount::get(d);
      std::vector<BlockId>& kids = children_[id];
      kids.reserve(n + 1);  // n < page_size: verify() fits the slots in the page
      kids.push_back(PageHeader::Link0::get(d));
      for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint32_t off =
            le::load<std::uint16_t>(d, page::kHeaderSize + i * page::kSlotSize);
        kids.push_back(InnerCell::Child::get(d + off));
      }
      break;
    }
    case PageType::kOverflow:
      seen_[id] = Seen::kOverflow;
      ++r_.overflow_pages;
      overflow_[id] = OverflowPage{PageHeader::Link0::get(d), PageHeader::Payload::get(d), false};
      break;
    case PageType::kFree:
      seen_[id] = Seen::kFree;
      ++r_.free_pages;
      free_next_[id] = PageHeader::Link0::get(d);
      break;
    default: break;  // verify() admits no other type
  }
}

// Every cell of a leaf that verified (so each slot holds a whole cell inside
// the page, and lengths are within the limits).
void Salvager::read_leaf(BlockId id, const std::byte* d) {
  const std::uint32_t n = PageHeader::SlotCount::get(d);
  const std::uint64_t lsn = PageHeader::Lsn::get(d);
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t off = le::load<std::uint16_t>(d, page::kHeaderSize + i * page::kSlotSize);
    const std::byte* cell = d + off;
    const std::uint32_t klen = LeafCell::KeyLength::get(cell);
    const std::uint32_t vlen = LeafCell::ValueLength::get(cell);
    const char* key = reinterpret_cast<const char*>(cell + LeafCell::kFixed);
    Candidate c;
    c.key.assign(key, klen);
    c.page = id;
    c.lsn = lsn;
    if ((LeafCell::Flags::get(cell) & LeafCell::kOverflow) != 0) {
      c.overflow = le::load<std::uint64_t>(cell, LeafCell::kFixed + klen);
      c.length = vlen;
    } else {
      c.value.assign(key + klen, vlen);
    }
    candidates_.push_back(std::move(c));
  }
}

// Pages the free list names hold no pairs: damage there loses nothing.
void Salvager::walk_free_list() {
  if (!meta_) return;
  BlockId id = meta_->state.tree.free_head;
  for (std::uint64_t hops = 0; id != kInvalidBlockId && hops < pages_; ++hops) {
    if (id < 2 || id >= pages_ || known_free_[id]) return;
    known_free_[id] = true;
    if (seen_[id] != Seen::kFree) return;  // damaged (or not a free page): the list ends here
    id = free_next_[id];
  }
}

// Marks the pages reachable from the meta page's root, level by level: a
// child at depth d must be a leaf iff d = height - 1. Each page is taken
// once, so a cycle ends the walk.
void Salvager::walk_tree() {
  if (!meta_) return;
  const TreeState& t = meta_->state.tree;
  std::vector<BlockId> level{t.root};
  for (std::uint32_t depth = 0; depth < t.height && !level.empty(); ++depth) {
    const bool leaves = depth + 1 == t.height;
    std::vector<BlockId> next;
    for (const BlockId id : level) {
      if (id < 2 || id >= pages_ || reachable_[id]) continue;
      reachable_[id] = true;
      if (leaves) {
        if (seen_[id] == Seen::kLeaf) ++r_.leaves_reachable;
        continue;
      }
      if (seen_[id] != Seen::kInner) continue;
      const std::vector<BlockId>& kids = children_[id];
      next.insert(next.end(), kids.begin(), kids.end());
    }
    level = std::move(next);
  }
}

void Salvager::count_unreadable() {
  for (BlockId id = 2; id < pages_; ++id) {
    if (seen_[id] != Seen::kBad) continue;
    ++r_.pages_unreadable;
    if (r_.unreadable_ids.size() < options_.max_listed) r_.unreadable_ids.push_back(id);
    if (known_free_[id]) {
      ++r_.unreadable_free;
      continue;
    }
    const auto it = reasons_.find(id);
    problem(it != reasons_.end() ? it->second : "page " + std::to_string(id) + " is unreadable");
  }
  if (meta_ && meta_->state.page_count > pages_) {
    r_.pages_missing = meta_->state.page_count - pages_;
    problem("the file is truncated: the meta page counts " +
            std::to_string(meta_->state.page_count) + " pages, the file holds " +
            std::to_string(pages_));
  }
}

// Is the value's whole chain there, from pages that verified? The chain is
// followed through what the first pass recorded, at most once per overflow
// page, and must end exactly with the value.
bool Salvager::chain_intact(const Candidate& c, std::string& why) const {
  BlockId id = c.overflow;
  std::uint64_t bytes = 0;
  std::uint64_t hops = 0;
  while (id != kInvalidBlockId) {
    const auto it = overflow_.find(id);
    if (it != overflow_.end() && it->second.claimed) {
      why = "its overflow chain reaches page " + std::to_string(id) +
            ", which holds another key's value";
      return false;
    }
    if (it == overflow_.end()) {
      why = "its overflow chain reaches page " + std::to_string(id) +
            ", which is not an intact overflow page";
      return false;
    }
    bytes += it->second.payload;
    if (++hops > overflow_.size() || bytes > c.length) {
      why = "its overflow chain runs past the value's " + std::to_string(c.length) + " bytes";
      return false;
    }
    id = it->second.next;
  }
  if (bytes != c.length) {
    why = "its overflow chain ends after " + std::to_string(bytes) + " of the value's " +
          std::to_string(c.length) + " bytes";
    return false;
  }
  return true;
}

Task<bool> Salvager::read_chain(const Candidate& c, std::string& value) {
  value.clear();
  value.reserve(c.length);  // chain_intact(): the file holds that many bytes
  AlignedBuffer buf(page_size_);
  std::uint64_t hops = 0;
  for (BlockId id = c.overflow; id != kInvalidBlockId;) {
    if (++hops > overflow_.size()) co_return false;
    bool ok = true;
    try {
      co_await read_page(id, buf.span());
      page::verify(id, buf.span(), path_);
    } catch (const Error&) {
      ok = false;
    }
    const std::byte* d = buf.data();
    const std::uint64_t n = PageHeader::Payload::get(d);
    if (!ok || page::type(d) != PageType::kOverflow || value.size() + n > c.length) {
      co_return false;  // changed since the first pass
    }
    value.append(reinterpret_cast<const char*>(d + page::kHeaderSize), n);
    if (const auto it = overflow_.find(id); it != overflow_.end()) it->second.claimed = true;
    id = PageHeader::Link0::get(d);
  }
  co_return value.size() == c.length;
}

// One pair per key: the copy from the leaf with the higher LSN, then a
// reachable one; its value read from its overflow chain if need be.
Task<std::vector<std::pair<std::string, std::string>>> Salvager::resolve() {
  std::vector<std::size_t> order(candidates_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Candidate& x = candidates_[a];
    const Candidate& y = candidates_[b];
    if (const int c = x.key.compare(y.key); c != 0) return c < 0;
    if (x.lsn != y.lsn) return x.lsn > y.lsn;
    return reachable_[x.page] && !reachable_[y.page];
  });
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::size_t i = 0; i < order.size(); ++i) {
    Candidate& c = candidates_[order[i]];
    if (i > 0 && candidates_[order[i - 1]].key == c.key) {
      ++r_.duplicate_keys;
      continue;
    }
    if (c.overflow != kInvalidBlockId) {
      std::string why;
      bool ok = chain_intact(c, why);
      if (ok) ok = co_await read_chain(c, c.value);
      if (!ok) {
        ++r_.keys_lost_overflow;
        problem("the value of a key in leaf page " + std::to_string(c.page) + " is lost: " +
                (why.empty() ? std::string("its overflow chain changed while read") : why));
        continue;
      }
    }
    pairs.emplace_back(std::move(c.key), std::move(c.value));
  }
  candidates_.clear();
  r_.keys_from_pages = pairs.size();
  co_return pairs;
}

// The log's committed transactions newer than the checkpoint, over the pairs.
void Salvager::apply_log(std::vector<std::pair<std::string, std::string>>& pairs) {
  if (!log_.header) return;
  LogEffect e = log_effect(log_, replay_after_, page::max_key(page_size_), path_ + "-wal");
  r_.log_transactions_applied = e.transactions;
  r_.log_operations_applied = e.operations;
  if (!e.error.empty()) problem("the log's later transactions are lost: " + e.error);
  if (e.last.empty()) return;
  std::vector<std::pair<std::string, std::string>> merged;
  merged.reserve(pairs.size() + e.last.size());
  auto it = e.last.begin();
  for (auto& p : pairs) {
    for (; it != e.last.end() && it->first < p.first; ++it) {
      if (it->second) merged.emplace_back(it->first, std::move(*it->second));
    }
    if (it != e.last.end() && it->first == p.first) {
      if (it->second) merged.emplace_back(std::move(p.first), std::move(*it->second));
      ++it;
      continue;
    }
    merged.push_back(std::move(p));
  }
  for (; it != e.last.end(); ++it) {
    if (it->second) merged.emplace_back(it->first, std::move(*it->second));
  }
  pairs = std::move(merged);
}

// Bulk-loads the pairs into the new database and validates it. On failure
// the new files are removed.
Task<void> Salvager::write_out(std::string out,
                               std::vector<std::pair<std::string, std::string>> pairs) {
  Options o;
  o.page_size = page_size_;
  o.backend = options_.backend;
  o.create_if_missing = true;
  o.error_if_exists = true;
  const std::uint32_t t = meta_ ? meta_->state.tree.minimum_degree : 0;
  if (t >= 2 && t < (1u << 16)) o.minimum_degree = t;
  std::unique_ptr<Database> db = co_await Database::open(out, o);
  std::exception_ptr error;
  try {
    if (!pairs.empty()) co_await db->bulk_load(pairs);
    const ValidationReport v = co_await db->validate();
    if (!v.ok()) {
      throw Error(ErrorCode::kCorruption,
                  "the salvaged database '" + out + "' fails validation: " + v.summary(), 0, out);
    }
    co_await db->close();
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    db.reset();
    ::unlink(out.c_str());
    ::unlink((out + "-wal").c_str());
    std::rethrow_exception(error);
  }
  r_.keys_recovered = pairs.size();
}

Task<SalvageReport> Salvager::run(std::string out) {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      throw Error(ErrorCode::kNotFound, "'" + path_ + "' does not exist", ENOENT, path_);
    }
    throw errno_error(errno, "stat", path_);
  }
  if (st.st_size == 0) not_a_database(path_, "the file is empty (0 bytes)");
  if (::stat(out.c_str(), &st) == 0 || errno != ENOENT) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + out + "' already exists: salvage writes a new database", EEXIST, out);
  }
  ::stat(path_.c_str(), &st);
  const std::uint32_t probed = probe_page_size(path_, static_cast<std::uint64_t>(st.st_size));
  page_size_ = options_.page_size ? options_.page_size : probed;
  if (!valid_page_size(page_size_) || page_size_ != probed) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + path_ + "' has " + std::to_string(probed) + "-byte pages, not " +
                    std::to_string(options_.page_size),
                0, path_);
  }
  r_.page_size = page_size_;
  DiskOptions o;
  o.page_size = page_size_;
  o.backend = options_.backend;
  o.create_if_missing = false;
  disk_ = DiskManager::open(path_, o);
  co_await read_meta();
  co_await read_log();
  co_await read_pages();
  r_.pages = disk_->block_count();
  if (meta_) r_.meta_key_count = meta_->state.tree.key_count;
  walk_free_list();
  walk_tree();
  const auto leaves =
      static_cast<std::uint64_t>(std::count(seen_.begin(), seen_.end(), Seen::kLeaf));
  r_.leaves_orphan = leaves - r_.leaves_reachable;
  count_unreadable();
  std::vector<std::pair<std::string, std::string>> pairs = co_await resolve();
  disk_->close();
  const std::uint64_t found = r_.keys_from_pages + r_.keys_lost_overflow;
  if (meta_ && found < meta_->state.tree.key_count) {
    r_.keys_missing = meta_->state.tree.key_count - found;
  }
  if (meta_ && found != meta_->state.tree.key_count) {
    problem("the meta page counts " + std::to_string(meta_->state.tree.key_count) +
            " keys; the leaves that verify hold " +
            std::to_string(r_.keys_from_pages + r_.keys_lost_overflow));
  }
  apply_log(pairs);
  co_await write_out(std::move(out), std::move(pairs));
  co_return std::move(r_);
}

}  // namespace

Task<SalvageReport> salvage(std::string damaged, std::string out, SalvageOptions options) {
  Salvager s(std::move(damaged), options);
  SalvageReport r = co_await s.run(std::move(out));
  co_return r;
}

std::string SalvageReport::summary() const {
  std::string s;
  auto line = [&s](const char* name, const std::string& value) {
    std::string n = name;
    n.resize(std::max<std::size_t>(n.size(), 26), ' ');
    s += n + " " + value + "\n";
  };
  auto num = [](std::uint64_t v) { return std::to_string(v); };
  line("page_size", num(page_size));
  line("pages", num(pages));
  line("meta_pages_valid", num(meta_pages_valid) + " of 2");
  line("meta_key_count", num(meta_key_count));
  std::string ids;
  for (const std::uint64_t id : unreadable_ids) ids += (ids.empty() ? "" : " ") + num(id);
  if (unreadable_ids.size() < pages_unreadable) ids += " ...";
  line("pages_unreadable", num(pages_unreadable) + (ids.empty() ? "" : " (" + ids + ")"));
  line("pages_unreadable_free", num(unreadable_free));
  line("pages_missing", num(pages_missing));
  line("inner_pages", num(inner_pages));
  line("leaves_reachable", num(leaves_reachable));
  line("leaves_orphan", num(leaves_orphan));
  line("overflow_pages", num(overflow_pages));
  line("free_pages", num(free_pages));
  line("duplicate_keys", num(duplicate_keys));
  line("keys_from_pages", num(keys_from_pages));
  line("keys_lost_overflow", num(keys_lost_overflow));
  line("keys_missing", num(keys_missing));
  line("log", !log_found ? "none" : !log_used ? "found, not this database's or empty" : "used");
  line("log_transactions_applied", num(log_transactions_applied));
  line("log_operations_applied", num(log_operations_applied));
  line("log_checkpoint_pages", num(log_checkpoint_pages));
  line("keys_recovered", num(keys_recovered));
  line("problems", num(problem_count));
  for (const std::string& p : problems) s += "  " + p + "\n";
  if (problems.size() < problem_count) {
    s += "  ... and " + num(problem_count - problems.size()) + " more\n";
  }
  return s;
}

}  // namespace corobtree
