// The first pass of salvage (engine/db/salvager.h): the page size, the meta
// pages, the log, every page of the file, and the walks of the tree and the
// free list over what it recorded.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <corobtree/error.h>
#include <corobtree/when_all.h>

#include "engine/db/salvager.h"
#include "engine/format/page_format.h"
#include "engine/log/log_format.h"
#include "io/aligned_buffer.h"

namespace corobtree {

namespace {

bool all_zero(std::span<const std::byte> p) {
  return std::all_of(p.begin(), p.end(), [](std::byte b) { return b == std::byte{0}; });
}

}  // namespace

void not_a_database(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kCorruption, "'" + path + "' is not a corobtree database: " + why, 0,
              path);
}

// The page size of `path`: the one a meta page's header names (block 0, else
// block 1 at each possible size), unless none of the first pages verify at
// that size and some do at another (the checksum covers the page id, so a
// wrong size almost never verifies). Plain preads: the file is not open yet.
std::uint32_t probe_salvage_page_size(const std::string& path, std::uint64_t size) {
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

Task<void> Salvager::read_meta() {
  AlignedBuffer buf(page_size_);
  std::string why;
  for (BlockId id : {BlockId{0}, BlockId{1}}) {
    if (id >= disk_->block_count()) break;
    bool read = true;
    try {
      co_await disk_->read_block(id, buf.span());
    } catch (const Error&) {
      read = false;
    }
    const DecodedMeta d =
        read ? decode_meta(id, buf.span()) : DecodedMeta{MetaStatus::kBadChecksum, {}, 0};
    if (d.status != MetaStatus::kValid) {
      why += "; meta page " + std::to_string(id) + ": " +
             (read ? std::string(meta_status_name(d.status)) : std::string("read error"));
      continue;
    }
    ++r_.meta_pages_valid;
    if (!meta_ || d.meta.sequence > meta_->sequence) meta_ = d.meta;
  }
  if (!meta_) {
    problem("no valid meta page (the tree's root, height, key count and free list are unknown)" +
            why);
  }
}

Task<void> Salvager::read_log() {
  // Both logs (NAME-wal and NAME-wal2), merged in the order of their
  // generations as recovery reads them.
  std::vector<SalvagedLog> logs;
  for (const char* suffix : kLogSuffixes) {
    const std::string log_path = path_ + suffix;
    struct stat st;
    if (::stat(log_path.c_str(), &st) != 0) continue;
    r_.log_found = true;
    if (!options_.use_log) continue;
    DiskOptions o;
    o.page_size = page_size_;
    o.backend = options_.backend;
    o.create_if_missing = false;
    std::unique_ptr<DiskManager> file = DiskManager::open(log_path, o);
    SalvagedLog log = co_await read_salvage_log(*file, meta_ ? meta_->database_id : 0);
    file->close();
    if (!log.header && log.written) {
      // A log whose header fails (damaged, or another database's) holds nothing
      // recovery would replay either; say so, since it may have held commits.
      problem("the log '" + log_path +
              "' is not this database's or its header is damaged: its transactions, if any, "
              "are not applied");
    }
    if (log.header) logs.push_back(std::move(log));
  }
  log_ = merge_salvage_logs(std::move(logs));
  r_.log_used = log_.header;
  if (!log_.header) co_return;
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

}  // namespace corobtree
