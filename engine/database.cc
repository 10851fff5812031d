#include "engine/database.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/meta.h"
#include "engine/page_format.h"
#include "io/aligned_buffer.h"
#include "io/error.h"

namespace corobtree {

// Verifies every page read from disk and stamps every page written.
class Database::Hooks final : public PageHooks {
 public:
  explicit Hooks(std::string path) : path_(std::move(path)) {}
  void after_read(BlockId id, std::span<const std::byte> p) override {
    if (id < 2) {
      throw Error(ErrorCode::kCorruption,
                  "page " + std::to_string(id) + " of '" + path_ + "' is a meta page, not a tree page",
                  0, path_, id);
    }
    page::verify(id, p, path_);
  }
  void before_write(BlockId id, std::span<std::byte> p) override { page::stamp_checksum(id, p); }

 private:
  std::string path_;
};

namespace {

[[noreturn]] void not_a_database(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kCorruption, "'" + path + "' is not a corobtree database: " + why, 0, path);
}

bool valid_page_size(std::uint32_t ps) {
  return ps >= kMinPageSize && ps <= kMaxPageSize && (ps & (ps - 1)) == 0;
}

// Learns the page size of an existing file from a meta page's header: block 0
// first, else block 1 at each possible page size (block 0 may be the damaged one).
std::uint32_t probe_page_size(const std::string& path, std::uint64_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw errno_error(errno, "open", path);
  auto read_header = [&](std::uint64_t off, std::byte* out) {
    return ::pread(fd, out, kMetaProbeBytes, static_cast<off_t>(off)) ==
           static_cast<ssize_t>(kMetaProbeBytes);
  };
  std::byte h[kMetaProbeBytes];
  std::uint32_t found = 0;
  std::uint32_t version = 0;
  for (std::uint64_t off : {std::uint64_t{0}, std::uint64_t{512}, std::uint64_t{1024},
                            std::uint64_t{2048}, std::uint64_t{4096}, std::uint64_t{8192},
                            std::uint64_t{16384}, std::uint64_t{32768}, std::uint64_t{65536}}) {
    if (off + kMetaProbeBytes > size || !read_header(off, h)) continue;
    if (page::load<std::uint64_t>(h, 8) != kMagic) continue;
    const auto ps = page::load<std::uint32_t>(h, 20);
    if (!valid_page_size(ps) || (off != 0 && ps != off)) continue;
    found = ps;
    version = page::load<std::uint32_t>(h, 16);
    break;
  }
  ::close(fd);
  if (found == 0) not_a_database(path, "no meta page with the corobtree magic number");
  if (version != kFormatVersion) {
    throw Error(ErrorCode::kNotSupported,
                "'" + path + "' has format version " + std::to_string(version) +
                    "; this library reads version " + std::to_string(kFormatVersion),
                0, path);
  }
  return found;
}

}  // namespace

Database::Database(std::string path, std::unique_ptr<DiskManager> disk, std::size_t pool_pages,
                   const Meta& meta)
    : path_(std::move(path)),
      disk_(std::move(disk)),
      hooks_(std::make_unique<Hooks>(path_)),
      pool_(std::make_unique<BufferPool>(*disk_, pool_pages)),
      meta_sequence_(meta.sequence),
      checkpoint_lsn_(meta.checkpoint_lsn) {
  pool_->set_hooks(hooks_.get());
  TreeState st;
  st.root = meta.root;
  st.height = meta.height;
  st.key_count = meta.key_count;
  st.free_head = meta.free_head;
  st.free_pages = meta.free_pages;
  st.minimum_degree = meta.minimum_degree;
  tree_ = std::make_unique<BTree>(*pool_, st);
}

Database::~Database() = default;

Task<std::unique_ptr<Database>> Database::open(std::string path, Options options) {
  struct stat st;
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) throw errno_error(errno, "stat", path);
  if (!exists && !options.create_if_missing) {
    throw Error(ErrorCode::kNotFound, "'" + path + "' does not exist", ENOENT, path);
  }
  if (exists && options.error_if_exists) {
    throw Error(ErrorCode::kInvalidArgument, "'" + path + "' already exists", EEXIST, path);
  }
  if (exists && st.st_size == 0) not_a_database(path, "the file is empty (0 bytes)");
  if (options.minimum_degree == 1) {
    throw Error(ErrorCode::kInvalidArgument, "minimum degree must be 0 or at least 2");
  }
  std::uint32_t page_size = options.page_size ? options.page_size : kDefaultPageSize;
  if (exists) {
    const std::uint32_t file_ps = probe_page_size(path, static_cast<std::uint64_t>(st.st_size));
    if (options.page_size != 0 && options.page_size != file_ps) {
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + path + "' has " + std::to_string(file_ps) + "-byte pages, not the " +
                      std::to_string(options.page_size) + " the options ask for",
                  0, path);
    }
    page_size = file_ps;
  }
  DiskOptions dopts;
  dopts.page_size = page_size;
  dopts.backend = options.backend;
  dopts.direct_io = options.direct_io;
  dopts.loop = options.loop;
  dopts.create_if_missing = options.create_if_missing;
  std::unique_ptr<DiskManager> disk = DiskManager::open(path, dopts);

  Meta meta;
  AlignedBuffer buf(page_size);
  if (!exists || disk->block_count() == 0) {
    // A new database: two meta pages and an empty root leaf.
    disk->allocate_blocks(3);
    page::init(buf.span(), PageType::kLeaf);
    page::stamp_checksum(2, buf.span());
    co_await disk->write_block(2, buf.span());
    meta.page_size = page_size;
    meta.root = 2;
    meta.height = 1;
    meta.minimum_degree = options.minimum_degree;
    meta.page_count = 3;
    for (BlockId id : {BlockId{0}, BlockId{1}}) {
      meta.sequence = id;
      encode_meta(meta, id, buf.span());
      co_await disk->write_block(id, buf.span());
    }
    co_await disk->sync();
  } else {
    if (disk->block_count() < 3) {
      throw Error(ErrorCode::kCorruption,
                  "'" + path + "' is truncated: " + std::to_string(st.st_size) + " bytes", 0, path);
    }
    DecodedMeta best{MetaStatus::kBadMagic, {}, 0};
    std::string reasons;
    for (BlockId id : {BlockId{0}, BlockId{1}}) {
      co_await disk->read_block(id, buf.span());
      DecodedMeta d = decode_meta(id, buf.span());
      if (d.status != MetaStatus::kValid) {
        reasons += " meta page " + std::to_string(id) +
                   (d.status == MetaStatus::kBadChecksum ? ": checksum mismatch;"
                    : d.status == MetaStatus::kBadMagic  ? ": bad magic number;"
                    : d.status == MetaStatus::kBadVersion ? ": unknown format version;"
                                                           : ": impossible field values;");
        continue;
      }
      if (best.status != MetaStatus::kValid || d.meta.sequence > best.meta.sequence) best = d;
    }
    if (best.status != MetaStatus::kValid) {
      throw Error(ErrorCode::kCorruption, "'" + path + "' has no valid meta page:" + reasons, 0, path);
    }
    meta = best.meta;
    if (meta.page_count > disk->block_count()) {
      throw Error(ErrorCode::kCorruption,
                  "'" + path + "' is truncated: the meta page counts " +
                      std::to_string(meta.page_count) + " pages, the file holds " +
                      std::to_string(disk->block_count()),
                  0, path);
    }
  }
  auto db = std::unique_ptr<Database>(new Database(path, std::move(disk), options.pool_pages, meta));
  co_return db;
}

void Database::check_open() const {
  if (closed_) throw Error(ErrorCode::kClosed, "database '" + path_ + "' is closed", 0, path_);
}

// The point operations hand back the tree's task itself (no extra frame); a
// closed database throws at the call, inside the caller's co_await expression.
Task<std::optional<std::string>> Database::get(std::string_view key) {
  check_open();
  return tree_->get(key);
}

Task<void> Database::put(std::string_view key, std::string_view value) {
  check_open();
  modified_ = true;
  return tree_->put(key, value);
}

Task<bool> Database::erase(std::string_view key) {
  check_open();
  modified_ = true;
  return tree_->erase(key);
}

Task<void> Database::write(const WriteBatch& batch) {
  check_open();
  for (const WriteBatch::Op& op : batch.ops()) {  // reject bad input before changing anything
    tree_->check_key(op.key);
    if (!op.erase) tree_->check_value(op.value);
  }
  modified_ = true;
  AsyncLockGuard writer = co_await tree_->writer_mutex().scoped_lock();
  for (const WriteBatch::Op& op : batch.ops()) {
    if (op.erase) {
      co_await tree_->erase_locked(op.key);
    } else {
      co_await tree_->put_locked(op.key, op.value);
    }
  }
}

Task<void> Database::bulk_load(const std::vector<std::pair<std::string, std::string>>& sorted) {
  check_open();
  modified_ = true;
  co_await tree_->bulk_load(sorted);
}

Cursor Database::cursor(ScanOptions options) {
  check_open();
  return Cursor(*tree_, std::move(options));
}

Task<std::vector<std::pair<std::string, std::string>>> Database::scan(ScanOptions options,
                                                                      std::size_t limit) {
  check_open();
  std::vector<std::pair<std::string, std::string>> out;
  Cursor c(*tree_, std::move(options));
  bool ok = co_await c.first();
  while (ok && out.size() < limit) {
    out.emplace_back(std::string(c.key()), std::string(c.value()));
    if (out.size() == limit) break;
    ok = co_await c.next();
  }
  co_return out;
}

Task<ValidationReport> Database::validate() {
  check_open();
  ValidationReport r = co_await tree_->validate();
  co_return r;
}

Task<void> Database::write_meta() {
  const TreeState& s = tree_->state();
  Meta m;
  m.page_size = disk_->page_size();
  m.sequence = ++meta_sequence_;
  m.root = s.root;
  m.height = s.height;
  m.minimum_degree = s.minimum_degree;
  m.key_count = s.key_count;
  m.free_head = s.free_head;
  m.free_pages = s.free_pages;
  m.page_count = disk_->block_count();
  m.checkpoint_lsn = checkpoint_lsn_;
  AlignedBuffer buf(disk_->page_size());
  const BlockId id = m.sequence % 2;
  encode_meta(m, id, buf.span());
  co_await disk_->write_block(id, buf.span());
}

Task<void> Database::checkpoint() {
  check_open();
  AsyncLockGuard writer = co_await tree_->writer_mutex().scoped_lock();
  co_await pool_->flush_all();
  co_await disk_->sync();  // the pages, before the meta pages that point at them
  // Both meta pages get the new state, one after the other, each synced: a
  // torn write of either leaves the other intact, and an intact one is never
  // older than the pages (until the WAL exists, the pages are updated in place).
  co_await write_meta();
  co_await disk_->sync();
  co_await write_meta();
  co_await disk_->sync();
  modified_ = false;
}

Task<void> Database::close() {
  if (closed_) co_return;
  // A database that was only read is left byte for byte as it was.
  if (modified_) co_await checkpoint();
  co_await pool_->close();
  closed_ = true;
  disk_->close();
}

DatabaseStats Database::stats() const {
  DatabaseStats s;
  const TreeState& t = tree_->state();
  s.keys = t.key_count;
  s.height = t.height;
  s.pages = disk_->block_count();
  s.free_pages = t.free_pages;
  s.page_size = disk_->page_size();
  s.minimum_degree = t.minimum_degree;
  s.backend = disk_->backend();
  s.fallback_reason = disk_->fallback_reason();
  s.pool = pool_->stats();
  return s;
}

}  // namespace corobtree
