#define BOOST_TEST_MODULE disk_manager
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

// DiskManager on every backend (io_uring and pread, buffered and O_DIRECT):
// block layout, zero padding, persistence across reopen and backends, errors
// with real ENOSPC/EIO from the kernel, flock locking across processes, stats,
// concurrency, a randomized model check, and backend selection with the
// io_uring -> pread fallback driven by a seccomp filter.

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"
#include "io/event_loop.h"
#include "io/uring_disk_manager.h"
#include "tests/support/backends.h"
#include "tests/support/file_bytes.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

using namespace corobtree;
using corobtree::test::BackendConfig;
using corobtree::test::TempDir;
namespace bdata = boost::unit_test::data;

#define ALL_BACKENDS bdata::make(corobtree::test::all_backends())

namespace {

using corobtree::test::run_in_child;

// Distinct per seed at every offset, so a block read from the wrong place (or
// a stale one) never passes for the expected one.
std::byte pattern_byte(std::uint32_t seed, std::size_t i) {
  return static_cast<std::byte>((seed * 0x9E3779B1u + i * 31u + (i >> 8)) & 0xffu);
}
bool has_pattern(std::span<const std::byte> s, std::uint32_t seed) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != pattern_byte(seed, i)) return false;
  }
  return true;
}
bool all_bytes(std::span<const std::byte> s, std::byte value) {
  return std::all_of(s.begin(), s.end(), [value](std::byte b) { return b == value; });
}
AlignedBuffer pattern_page(std::uint32_t page_size, std::uint32_t seed) {
  AlignedBuffer page(page_size);
  for (std::size_t i = 0; i < page_size; ++i) page.data()[i] = pattern_byte(seed, i);
  return page;
}

// Blocking use of the Task API. The read buffer starts as 0xCD so that a read
// which transfers nothing cannot pass for a block of zeros.
// A file of 5000 bytes (a whole block, then 904 bytes of a second), written
// by another tool than a DiskManager: the first 5000 bytes of the returned
// pattern (two blocks of pattern_page, seed 11).
AlignedBuffer write_partial_file(const std::string& path) {
  AlignedBuffer pattern = pattern_page(2 * kDefaultPageSize, 11);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE_EQUAL(::pwrite(fd, pattern.data(), 5000, 0), 5000);
  ::close(fd);
  return pattern;
}

AlignedBuffer read_now(DiskManager& dm, BlockId id) {
  AlignedBuffer page(dm.page_size());
  std::memset(page.data(), 0xCD, page.size());
  sync_wait(dm.read_block(id, page.span()));
  return page;
}
void write_now(DiskManager& dm, BlockId id, std::span<const std::byte> data) {
  sync_wait(dm.write_block(id, data));
}

// Coroutine helpers are free functions taking everything by value: capturing
// coroutine lambdas dangle on GCC 12 (docs/contributing.md).
Task<bool> read_matches(DiskManager* dm, BlockId id, std::uint32_t seed) {
  AlignedBuffer page(dm->page_size());
  co_await dm->read_block(id, page.span());
  const bool same = has_pattern(page.span(), seed);
  co_return same;
}
// Records how many writes had completed when the sync finished.
Task<void> sync_and_count(DiskManager* dm, std::uint64_t* writes_seen) {
  co_await dm->sync();
  *writes_seen = dm->stats().writes;
}

// Runs `op`, which must throw Error with `code`, a message naming `path` (if
// not empty) and `block` (if given). Returns the error for further checks.
template <typename Op>
std::optional<Error> expect_error(int line, ErrorCode code, const std::string& path,
                                  std::optional<BlockId> block, Op&& op) {
  try {
    op();
  } catch (const Error& e) {
    const std::string what = e.what();
    BOOST_CHECK_MESSAGE(e.code() == code,
                        "line " << line << ": want " << error_code_name(code) << ", got: " << what);
    BOOST_CHECK_MESSAGE(
        path.empty() || (what.find("'" + path + "'") != std::string::npos && e.path() == path),
        "line " << line << ": file not named: " << what);
    BOOST_CHECK_MESSAGE(
        !block || (what.find("block " + std::to_string(*block) + " ") != std::string::npos &&
                   e.block() == block),
        "line " << line << ": block not named: " << what);
    return e;
  } catch (const std::exception& e) {
    BOOST_ERROR("line " << line << ": want corobtree::Error, got: " << e.what());
    return std::nullopt;
  }
  BOOST_ERROR("line " << line << ": want " << error_code_name(code) << ", nothing thrown");
  return std::nullopt;
}
#define EXPECT_ERROR(code, path, block, ...) \
  expect_error(__LINE__, (code), (path), (block), [&] { __VA_ARGS__; })
const std::string kAnyPath;

void check_backend(const DiskManager& dm, IoBackend want) {
  BOOST_CHECK_MESSAGE(dm.backend() == want,
                      "backend " << backend_name(dm.backend()) << ", want " << backend_name(want));
}

BackendConfig other_backend(const BackendConfig& c) {
  return {c.backend == IoBackend::kUring ? IoBackend::kPread : IoBackend::kUring, c.direct_io};
}

// Puts `file` behind the DiskManager's descriptor, so both backends hit that
// file's real kernel errors.
void swap_fd(DiskManager& dm, const char* file, int flags) {
  const int fd = ::open(file, flags | O_CLOEXEC);
  BOOST_REQUIRE_MESSAGE(fd >= 0, file << ": " << std::strerror(errno));
  BOOST_REQUIRE_EQUAL(::dup2(fd, dm.native_handle()), dm.native_handle());
  ::close(fd);
}

// Exit code of a child that tries to open: 0 opened, 1 kLocked, 2 other error.
int try_open_code(const std::string& path, const DiskOptions& options) {
  try {
    auto dm = DiskManager::open(path, options);
    return 0;
  } catch (const Error& e) {
    return e.code() == ErrorCode::kLocked ? 1 : 2;
  }
}

// Sets (nullptr: unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    set(value);
  }
  ~ScopedEnv() { set(old_ ? old_->c_str() : nullptr); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  void set(const char* value) { value ? ::setenv(name_, value, 1) : ::unsetenv(name_); }
  const char* name_;
  std::optional<std::string> old_;
};

#if defined(__x86_64__)
// From now on io_uring_setup fails with `err` in this process, as in sandboxes
// and containers that forbid io_uring; every other syscall still works.
bool deny_io_uring_setup(int err) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),  // another ABI: nr means else
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog;
  prog.len = static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0]));
  prog.filter = filter;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

const char* const kFallbackCodes[] = {"ok",
                                      "seccomp filter not installed",
                                      "auto open threw",
                                      "auto did not pick pread",
                                      "fallback_reason does not mention io_uring_setup",
                                      "the pread fallback lost data",
                                      "forced uring opened",
                                      "forced uring: code is not kNotSupported",
                                      "forced uring: sys_errno is not the setup errno"};

// Runs in a forked child; returns an index into kFallbackCodes.
int fallback_child(const std::string& path, int err) {
  if (!deny_io_uring_setup(err)) return 1;
  DiskOptions options;
  options.use_env = false;
  options.backend = IoBackend::kAuto;
  try {
    auto dm = DiskManager::open(path, options);
    if (dm->backend() != IoBackend::kPread) return 3;
    if (dm->fallback_reason().find("io_uring_setup") == std::string::npos) return 4;
    const BlockId id = dm->allocate_block();
    AlignedBuffer page = pattern_page(dm->page_size(), 5);
    write_now(*dm, id, page.span());
    if (!has_pattern(read_now(*dm, id).span(), 5)) return 5;
  } catch (...) {
    return 2;
  }
  options.backend = IoBackend::kUring;
  try {
    auto dm = DiskManager::open(path, options);
    return 6;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotSupported) return 7;
    if (e.sys_errno() != err) return 8;
  }
  return 0;
}
#endif

}  // namespace

BOOST_AUTO_TEST_SUITE(basics)

BOOST_DATA_TEST_CASE(allocate_write_read, ALL_BACKENDS, cfg) {
  for (const std::uint32_t page_size : {4096u, 8192u}) {
    BOOST_TEST_CONTEXT("page size " << page_size) {
      TempDir dir;
      const std::string path = dir.file("blocks.db");
      auto dm = DiskManager::open(path, cfg.options(page_size));
      check_backend(*dm, cfg.backend);
      BOOST_CHECK_EQUAL(dm->direct_io(), cfg.direct_io);
      BOOST_CHECK_EQUAL(dm->page_size(), page_size);
      BOOST_CHECK_EQUAL(dm->path(), path);
      BOOST_CHECK(dm->is_open() && dm->fallback_reason().empty());
      BOOST_CHECK_EQUAL(dm->block_count(), 0u);
      BOOST_CHECK(!dm->exists(0));

      BOOST_CHECK_EQUAL(dm->allocate_block(), 0u);
      BOOST_CHECK_EQUAL(dm->allocate_blocks(3), 1u);
      BOOST_CHECK_EQUAL(dm->allocate_blocks(0), 4u);  // no-op: the next id
      BOOST_CHECK_EQUAL(dm->block_count(), 4u);
      BOOST_CHECK(dm->exists(3) && !dm->exists(4) && !dm->exists(kInvalidBlockId));
      // The size may lag inside the reservation until a sync.
      BOOST_CHECK_LE(std::filesystem::file_size(path), 4u * page_size);
      for (BlockId id = 0; id < 4; ++id) {
        BOOST_CHECK_MESSAGE(all_bytes(read_now(*dm, id).span(), std::byte{0}),
                            "new block " << id << " is not zeroed");
      }

      AlignedBuffer one = pattern_page(page_size, 1);
      AlignedBuffer two = pattern_page(page_size, 2);
      write_now(*dm, 1, one.span());
      write_now(*dm, 2, two.span());
      BOOST_CHECK(has_pattern(read_now(*dm, 1).span(), 1));
      BOOST_CHECK(has_pattern(read_now(*dm, 2).span(), 2));
      BOOST_CHECK(all_bytes(read_now(*dm, 0).span(), std::byte{0}));
      BOOST_CHECK(all_bytes(read_now(*dm, 3).span(), std::byte{0}));

      // Block 2 lives at byte 2 * page_size: check behind the library's back.
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      BOOST_REQUIRE(fd >= 0);
      std::vector<std::byte> raw(page_size);
      const ssize_t got = ::pread(fd, raw.data(), page_size, 2 * static_cast<off_t>(page_size));
      ::close(fd);
      BOOST_CHECK_EQUAL(got, static_cast<ssize_t>(page_size));
      BOOST_CHECK(has_pattern(raw, 2));
      sync_wait(dm->sync());
      BOOST_CHECK_EQUAL(std::filesystem::file_size(path), 4u * page_size);
    }
  }
}

// Blocks allocated one at a time (most inside a reservation past the end)
// have their space on disk, read as zeros, and count after a reopen; so do
// blocks allocated again after a truncate_blocks (which frees the
// reservation with the tail). Inside the reservation the file's size lags
// (no system call per allocation) until sync() or close() sets it: blocks
// past the size read as zeros and a write past it extends the file.
BOOST_DATA_TEST_CASE(allocation_inside_the_reservation_has_its_space, ALL_BACKENDS, cfg) {
  TempDir dir;
  const std::string path = dir.file("grow.db");
  const auto allocated_bytes = [&path] {
    struct stat st {};
    BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
  };
  std::uint32_t ps = 0;
  {
    auto dm = DiskManager::open(path, cfg.options());
    ps = dm->page_size();
    for (BlockId id = 0; id < 300; ++id) {
      BOOST_REQUIRE_EQUAL(dm->allocate_block(), id);
      BOOST_REQUIRE_LE(std::filesystem::file_size(path), (id + 1) * std::uint64_t{ps});
    }
    BOOST_CHECK_LT(std::filesystem::file_size(path), 300u * ps);  // lagging
    BOOST_CHECK_GE(allocated_bytes(), 300u * ps);                 // not a sparse file
    AlignedBuffer page = pattern_page(ps, 7);
    write_now(*dm, 150, page.span());  // past the size: extends the file
    BOOST_CHECK_EQUAL(std::filesystem::file_size(path), 151u * ps);
    BOOST_CHECK(has_pattern(read_now(*dm, 150).span(), 7));
    for (const BlockId id : {BlockId{149}, BlockId{151}, BlockId{299}}) {
      BOOST_CHECK_MESSAGE(all_bytes(read_now(*dm, id).span(), std::byte{0}),
                          "block " << id << " past the written one is not zeroed");
    }
    sync_wait(dm->sync());
    BOOST_CHECK_EQUAL(std::filesystem::file_size(path), 300u * ps);
    write_now(*dm, 299, page.span());
    dm->truncate_blocks(100);
    BOOST_CHECK_EQUAL(std::filesystem::file_size(path), 100u * ps);
    for (BlockId id = 100; id < 250; ++id) BOOST_REQUIRE_EQUAL(dm->allocate_block(), id);
    BOOST_CHECK_GE(allocated_bytes(), 250u * ps);
    for (const BlockId id : {BlockId{100}, BlockId{199}, BlockId{249}}) {
      BOOST_CHECK_MESSAGE(all_bytes(read_now(*dm, id).span(), std::byte{0}),
                          "block " << id << " allocated again is not zeroed");
    }
    write_now(*dm, 248, page.span());
    sync_wait(dm->sync());
    BOOST_CHECK_EQUAL(std::filesystem::file_size(path), 250u * ps);
    for (BlockId id = 250; id < 260; ++id) BOOST_REQUIRE_EQUAL(dm->allocate_block(), id);
    // Closed without a sync: close() sets the size.
  }
  BOOST_CHECK_EQUAL(std::filesystem::file_size(path), 260u * ps);
  auto dm = DiskManager::open(path, cfg.options());
  BOOST_CHECK_EQUAL(dm->block_count(), 260u);
  BOOST_CHECK(has_pattern(read_now(*dm, 248).span(), 7));
  BOOST_CHECK(all_bytes(read_now(*dm, 249).span(), std::byte{0}));
  BOOST_CHECK(all_bytes(read_now(*dm, 259).span(), std::byte{0}));
}

BOOST_DATA_TEST_CASE(short_write_pads_and_long_write_is_rejected, ALL_BACKENDS, cfg) {
  TempDir dir;
  const std::string path = dir.file("pad.db");
  auto dm = DiskManager::open(path, cfg.options());
  const std::uint32_t ps = dm->page_size();
  dm->allocate_blocks(2);
  AlignedBuffer full(ps);
  std::memset(full.data(), 0xAB, ps);
  write_now(*dm, 0, full.span());
  write_now(*dm, 1, full.span());

  // A std::vector is not 4096-aligned, so O_DIRECT must bounce it as well.
  const AlignedBuffer pattern = pattern_page(ps, 7);
  const std::vector<std::byte> head(pattern.data(), pattern.data() + 100);
  write_now(*dm, 0, head);
  AlignedBuffer got = read_now(*dm, 0);
  BOOST_CHECK(has_pattern(got.span().first(100), 7));
  BOOST_CHECK_MESSAGE(all_bytes(got.span().subspan(100), std::byte{0}),
                      "the old 0xAB tail survived a short write");
  const std::span<const std::byte> nothing;
  write_now(*dm, 1, nothing);
  BOOST_CHECK(all_bytes(read_now(*dm, 1).span(), std::byte{0}));

  const std::uint64_t writes = dm->stats().writes;
  const std::vector<std::byte> oversized(ps + 1, std::byte{0x11});
  EXPECT_ERROR(ErrorCode::kInvalidArgument, path, 0, write_now(*dm, 0, oversized));
  BOOST_CHECK_EQUAL(dm->stats().writes, writes);
  got = read_now(*dm, 0);
  BOOST_CHECK(has_pattern(got.span().first(100), 7));
  BOOST_CHECK(all_bytes(got.span().subspan(100), std::byte{0}));
  BOOST_CHECK_EQUAL(std::filesystem::file_size(path), 2u * ps);
}

BOOST_DATA_TEST_CASE(data_survives_reopen_and_backend_switch, ALL_BACKENDS, cfg) {
  constexpr BlockId kBlocks = 16;
  const auto seed_of = [](BlockId id) { return static_cast<std::uint32_t>(id + 100); };
  TempDir dir;
  const std::string path = dir.file("persist.db");
  {
    auto dm = DiskManager::open(path, cfg.options());
    dm->allocate_blocks(kBlocks);
    for (BlockId id = 0; id < kBlocks; ++id) {
      AlignedBuffer page = pattern_page(dm->page_size(), seed_of(id));
      write_now(*dm, id, page.span());
    }
    sync_wait(dm->sync());
  }
  // Both backends read the one on-disk format (the matrix covers both ways).
  for (const BackendConfig& reader : {cfg, other_backend(cfg)}) {
    BOOST_TEST_CONTEXT("reopened with " << reader.name()) {
      auto dm = DiskManager::open(path, reader.options());
      check_backend(*dm, reader.backend);
      BOOST_REQUIRE_EQUAL(dm->block_count(), kBlocks);
      for (BlockId id = 0; id < kBlocks; ++id) {
        BOOST_CHECK_MESSAGE(has_pattern(read_now(*dm, id).span(), seed_of(id)), "block " << id);
      }
    }
  }
}

// A file whose size is not a multiple of the page size (written by another
// tool) ends in a partial block that reads zero-padded.
BOOST_DATA_TEST_CASE(trailing_partial_block_reads_padded, ALL_BACKENDS, cfg) {
  TempDir dir;
  const std::string path = dir.file("partial.db");
  const AlignedBuffer pattern = write_partial_file(path);
  auto dm = DiskManager::open(path, cfg.options());
  BOOST_REQUIRE_EQUAL(dm->block_count(), 2u);
  AlignedBuffer got = read_now(*dm, 1);
  BOOST_CHECK(std::equal(got.data(), got.data() + 904, pattern.data() + 4096));
  BOOST_CHECK(all_bytes(got.span().subspan(904), std::byte{0}));
  BOOST_CHECK_EQUAL(dm->allocate_block(), 2u);
}

// read_blocks_into: a run of blocks scattered into separate buffers (a pool's
// frames), in an order unrelated to their addresses; io_uring makes it one
// vectored read, misaligned buffers under O_DIRECT go one by one.
BOOST_DATA_TEST_CASE(read_blocks_into_scatters_a_run, ALL_BACKENDS, cfg) {
  TempDir dir;
  auto dm = DiskManager::open(dir.file("scatter.db"), cfg.options());
  const std::uint32_t ps = dm->page_size();
  dm->allocate_blocks(12);
  for (BlockId id = 0; id < 12; ++id) {
    write_now(*dm, id, pattern_page(ps, static_cast<std::uint32_t>(100 + id)).span());
  }
  for (const bool misaligned : {false, true}) {
    BOOST_TEST_CONTEXT("misaligned " << misaligned) {
      // One arena, pages taken from its end backwards (+8 bytes: misaligned).
      constexpr std::size_t kRun = 9;
      AlignedBuffer arena((kRun + 1) * ps);
      std::memset(arena.data(), 0xCD, arena.size());
      std::vector<std::byte*> pages(kRun);
      for (std::size_t i = 0; i < kRun; ++i) {
        pages[i] = arena.data() + (kRun - 1 - i) * ps + (misaligned ? 8 : 0);
      }
      const std::uint64_t reads_before = dm->stats().reads;
      sync_wait(dm->read_blocks_into(2, pages));
      for (std::size_t i = 0; i < kRun; ++i) {
        BOOST_CHECK_MESSAGE(has_pattern(std::span<const std::byte>(pages[i], ps),
                                        static_cast<std::uint32_t>(102 + i)),
                            "block " << 2 + i << " is not in pages[" << i << "]");
      }
      BOOST_CHECK_EQUAL(dm->stats().reads - reads_before, kRun);
    }
  }
  // One page and none.
  AlignedBuffer one(ps);
  std::byte* const single[] = {one.data()};
  sync_wait(dm->read_blocks_into(11, single));
  BOOST_CHECK(has_pattern(one.span(), 111));
  sync_wait(dm->read_blocks_into(0, std::span<std::byte* const>()));
}

// A file whose last block is partial: the vectored read stops short in the
// middle of the second buffer; its rest is zero-padded, as read_block does.
BOOST_DATA_TEST_CASE(read_blocks_into_pads_a_trailing_partial_block, ALL_BACKENDS, cfg) {
  TempDir dir;
  const std::string path = dir.file("partial.db");
  const AlignedBuffer pattern = write_partial_file(path);
  auto dm = DiskManager::open(path, cfg.options());
  BOOST_REQUIRE_EQUAL(dm->block_count(), 2u);
  AlignedBuffer a(kDefaultPageSize);
  AlignedBuffer b(kDefaultPageSize);
  std::memset(a.data(), 0xCD, a.size());
  std::memset(b.data(), 0xCD, b.size());
  std::byte* const pages[] = {a.data(), b.data()};
  sync_wait(dm->read_blocks_into(0, pages));
  BOOST_CHECK(std::equal(a.data(), a.data() + kDefaultPageSize, pattern.data()));
  BOOST_CHECK(std::equal(b.data(), b.data() + 904, pattern.data() + 4096));
  BOOST_CHECK(all_bytes(b.span().subspan(904), std::byte{0}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(errors)

BOOST_DATA_TEST_CASE(bad_requests_and_closed_handle, ALL_BACKENDS, cfg) {
  TempDir dir;
  const std::string path = dir.file("errors.db");
  auto dm = DiskManager::open(path, cfg.options());
  const std::uint32_t ps = dm->page_size();
  dm->allocate_blocks(2);
  AlignedBuffer page(ps);
  AlignedBuffer small(ps / 2);
  AlignedBuffer large(2 * ps);

  EXPECT_ERROR(ErrorCode::kOutOfRange, path, 2, sync_wait(dm->read_block(2, page.span())));
  EXPECT_ERROR(ErrorCode::kOutOfRange, path, 7, sync_wait(dm->write_block(7, page.span())));
  EXPECT_ERROR(ErrorCode::kInvalidArgument, path, std::nullopt,
               sync_wait(dm->read_block(kInvalidBlockId, page.span())));
  EXPECT_ERROR(ErrorCode::kInvalidArgument, path, std::nullopt,
               sync_wait(dm->write_block(kInvalidBlockId, page.span())));
  EXPECT_ERROR(ErrorCode::kInvalidArgument, path, 1, sync_wait(dm->read_block(1, small.span())));
  EXPECT_ERROR(ErrorCode::kInvalidArgument, path, 1, sync_wait(dm->read_block(1, large.span())));
  BOOST_CHECK_EQUAL(dm->stats().reads + dm->stats().writes, 0u);  // failures count nothing

  dm->close();
  dm->close();  // idempotent
  BOOST_CHECK(!dm->is_open());
  BOOST_CHECK_EQUAL(dm->native_handle(), -1);
  // The kClosed messages name the file; the block is only in Error::block().
  auto e = EXPECT_ERROR(ErrorCode::kClosed, path, std::nullopt,
                        sync_wait(dm->read_block(0, page.span())));
  BOOST_CHECK(e && e->block() == BlockId{0});
  EXPECT_ERROR(ErrorCode::kClosed, path, std::nullopt, sync_wait(dm->write_block(0, page.span())));
  EXPECT_ERROR(ErrorCode::kClosed, path, std::nullopt, sync_wait(dm->sync()));
  EXPECT_ERROR(ErrorCode::kClosed, path, std::nullopt, dm->allocate_block());
  BOOST_CHECK_EQUAL(dm->block_count(), 2u);
}

BOOST_DATA_TEST_CASE(open_errors, ALL_BACKENDS, cfg) {
  TempDir dir;
  const std::string missing = dir.file("missing.db");
  DiskOptions no_create = cfg.options();
  no_create.create_if_missing = false;
  auto e = EXPECT_ERROR(ErrorCode::kNotFound, missing, std::nullopt,
                        DiskManager::open(missing, no_create));
  BOOST_CHECK(e && e->sys_errno() == ENOENT);
  BOOST_CHECK(!std::filesystem::exists(missing));

  // Page sizes are validated before the file is created.
  const std::string bad = dir.file("bad.db");
  for (const std::uint32_t ps : {0u, 256u, 1000u, 4097u, 131072u}) {
    BOOST_TEST_CONTEXT("page size " << ps) {
      EXPECT_ERROR(ErrorCode::kInvalidArgument, kAnyPath, std::nullopt,
                   DiskManager::open(bad, cfg.options(ps)));
      BOOST_CHECK(!std::filesystem::exists(bad));
    }
  }
}

// Real ENOSPC and EIO from the kernel: dup2 a failing file over the
// DiskManager's descriptor. Buffered configs only: the dup2 replaces the
// O_DIRECT file anyway, so direct ones would test nothing new.
BOOST_DATA_TEST_CASE(enospc_from_dev_full, ALL_BACKENDS, cfg) {
  if (cfg.direct_io) return;
  TempDir dir;
  const std::string path = dir.file("full.db");
  auto dm = DiskManager::open(path, cfg.options());
  dm->allocate_blocks(4);
  AlignedBuffer page = pattern_page(dm->page_size(), 3);
  write_now(*dm, 0, page.span());
  swap_fd(*dm, "/dev/full", O_RDWR);

  const std::uint64_t writes = dm->stats().writes;
  auto e = EXPECT_ERROR(ErrorCode::kNoSpace, path, 2, write_now(*dm, 2, page.span()));
  BOOST_CHECK(e && e->sys_errno() == ENOSPC);
  // A short write goes through the zero-padding bounce buffer: same error.
  const std::vector<std::byte> head(10, std::byte{1});
  e = EXPECT_ERROR(ErrorCode::kNoSpace, path, 3, write_now(*dm, 3, head));
  BOOST_CHECK(e && e->sys_errno() == ENOSPC);
  BOOST_CHECK_EQUAL(dm->stats().writes, writes);
  dm.reset();  // must neither crash nor hang
}

BOOST_DATA_TEST_CASE(eio_from_proc_self_mem, ALL_BACKENDS, cfg) {
  if (cfg.direct_io) return;
  TempDir dir;
  const std::string path = dir.file("eio.db");
  auto dm = DiskManager::open(path, cfg.options());
  dm->allocate_blocks(4);
  // Address 4096 of our own address space is below mmap_min_addr and never
  // mapped, so reading /proc/self/mem there fails with EIO.
  swap_fd(*dm, "/proc/self/mem", O_RDONLY);

  AlignedBuffer page(dm->page_size());
  auto e = EXPECT_ERROR(ErrorCode::kIoError, path, 1, sync_wait(dm->read_block(1, page.span())));
  BOOST_CHECK_MESSAGE(e && e->sys_errno() == EIO, "sys_errno " << (e ? e->sys_errno() : 0));
  BOOST_CHECK_EQUAL(dm->stats().reads, 0u);
  dm.reset();
}

// read_blocks_into's errors: a run reaching past the end names its block,
// and the kernel's EIO reaches the caller as kIoError.
BOOST_DATA_TEST_CASE(read_blocks_into_errors, ALL_BACKENDS, cfg) {
  TempDir dir;
  const std::string path = dir.file("eiov.db");
  auto dm = DiskManager::open(path, cfg.options());
  dm->allocate_blocks(4);
  AlignedBuffer a(dm->page_size());
  AlignedBuffer b(dm->page_size());
  std::byte* const pages[] = {a.data(), b.data()};
  EXPECT_ERROR(ErrorCode::kOutOfRange, path, 4, sync_wait(dm->read_blocks_into(3, pages)));
  if (cfg.direct_io) return;
  const std::uint64_t reads_before = dm->stats().reads;
  swap_fd(*dm, "/proc/self/mem", O_RDONLY);  // unmapped at these offsets: EIO
  auto e = EXPECT_ERROR(ErrorCode::kIoError, path, std::nullopt,
                        sync_wait(dm->read_blocks_into(1, pages)));
  BOOST_CHECK_MESSAGE(e && e->sys_errno() == EIO, "sys_errno " << (e ? e->sys_errno() : 0));
  BOOST_CHECK_EQUAL(dm->stats().reads, reads_before);
  dm.reset();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(locking)

BOOST_DATA_TEST_CASE(second_open_is_locked, ALL_BACKENDS, cfg) {
  TempDir dir;
  const std::string path = dir.file("locked.db");
  const DiskOptions options = cfg.options();
  auto first = DiskManager::open(path, options);
  first->allocate_block();

  EXPECT_ERROR(ErrorCode::kLocked, path, std::nullopt, DiskManager::open(path, options));
  EXPECT_ERROR(ErrorCode::kLocked, path, std::nullopt,
               DiskManager::open(path, other_backend(cfg).options()));
  // flock belongs to the open file, so another process is refused too.
  int code = run_in_child([&path, &options] { return try_open_code(path, options); });
  BOOST_CHECK_MESSAGE(code == 1, "child exit " << code << " (0 opened, 1 kLocked, 2 other)");

  // The refused opens left the holder working.
  AlignedBuffer page = pattern_page(first->page_size(), 9);
  write_now(*first, 0, page.span());
  first.reset();
  auto second = DiskManager::open(path, options);
  BOOST_CHECK_EQUAL(second->block_count(), 1u);
  BOOST_CHECK(has_pattern(read_now(*second, 0).span(), 9));
  second.reset();
  code = run_in_child([&path, &options] { return try_open_code(path, options); });
  BOOST_CHECK_MESSAGE(code == 0, "child exit " << code << " once the lock was released");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(concurrency)

BOOST_DATA_TEST_CASE(sync_waits_for_writes_and_stats_count, ALL_BACKENDS, cfg) {
  constexpr std::uint64_t kWrites = 10;
  TempDir dir;
  auto dm = DiskManager::open(dir.file("stats.db"), cfg.options());
  const DiskStats zero = dm->stats();
  BOOST_CHECK_EQUAL(zero.reads + zero.writes + zero.syncs + zero.allocations, 0u);
  dm->allocate_blocks(kWrites);
  BOOST_CHECK_EQUAL(dm->stats().allocations, kWrites);

  // Writes and a sync in flight together: the sync must not finish before the
  // writes started ahead of it (io_uring does not order them by itself). On
  // O_DIRECT an unordered fsync overtakes ~half of such rounds: repeat.
  constexpr std::uint64_t kRounds = 10;
  std::vector<AlignedBuffer> pages;
  for (BlockId id = 0; id < kWrites; ++id) {
    pages.push_back(pattern_page(dm->page_size(), static_cast<std::uint32_t>(id)));
  }
  for (std::uint64_t round = 1; round <= kRounds; ++round) {
    std::vector<Task<void>> tasks;
    for (BlockId id = 0; id < kWrites; ++id) tasks.push_back(dm->write_block(id, pages[id].span()));
    std::uint64_t writes_seen = 0;
    tasks.push_back(sync_and_count(dm.get(), &writes_seen));
    sync_wait(when_all(std::move(tasks)));
    BOOST_CHECK_MESSAGE(writes_seen == round * kWrites,
                        "round " << round << ": sync finished after " << writes_seen << " writes");
  }
  BOOST_CHECK_EQUAL(dm->stats().writes, kRounds * kWrites);
  BOOST_CHECK_EQUAL(dm->stats().syncs, kRounds);

  for (BlockId id = 0; id < 3; ++id) {
    BOOST_CHECK(has_pattern(read_now(*dm, id).span(), static_cast<std::uint32_t>(id)));
  }
  BOOST_CHECK_EQUAL(dm->stats().reads, 3u);
  sync_wait(dm->sync());
  BOOST_CHECK_EQUAL(dm->stats().syncs, kRounds + 1);
  BOOST_CHECK_EQUAL(dm->stats().allocations, kWrites);
}

BOOST_DATA_TEST_CASE(many_concurrent_ops, ALL_BACKENDS, cfg) {
  constexpr std::size_t kOps = 200;
  const auto seed_of = [](std::size_t i) { return static_cast<std::uint32_t>(i + 7); };
  TempDir dir;
  auto dm = DiskManager::open(dir.file("many.db"), cfg.options());
  dm->allocate_blocks(kOps);
  auto* uring = dynamic_cast<UringDiskManager*>(dm.get());
  BOOST_REQUIRE_EQUAL(uring != nullptr, cfg.backend == IoBackend::kUring);

  std::vector<AlignedBuffer> pages;
  std::vector<Task<void>> writes;
  for (std::size_t i = 0; i < kOps; ++i) pages.push_back(pattern_page(dm->page_size(), seed_of(i)));
  for (std::size_t i = 0; i < kOps; ++i) writes.push_back(dm->write_block(i, pages[i].span()));
  if (uring) uring->loop().reset_max_in_flight();
  sync_wait(when_all(std::move(writes)));
  // when_all starts every child before the loop is polled: all in flight at
  // once with O_DIRECT; buffered writes are copies done at once with pwrite.
  if (uring) BOOST_CHECK_EQUAL(uring->loop().stats().max_in_flight, cfg.direct_io ? kOps : 0u);

  std::vector<Task<bool>> reads;
  for (std::size_t i = 0; i < kOps; ++i) {
    const std::size_t id = kOps - 1 - i;  // reverse order: results must follow the tasks
    reads.push_back(read_matches(dm.get(), id, seed_of(id)));
  }
  if (uring) uring->loop().reset_max_in_flight();
  const std::vector<bool> ok = sync_wait(when_all(std::move(reads)));
  if (uring) BOOST_CHECK_EQUAL(uring->loop().stats().max_in_flight, kOps);
  BOOST_REQUIRE_EQUAL(ok.size(), kOps);
  for (std::size_t i = 0; i < kOps; ++i) {
    BOOST_CHECK_MESSAGE(ok[i], "block " << (kOps - 1 - i) << " read back wrong");
  }
  BOOST_CHECK_EQUAL(dm->stats().writes, kOps);
  BOOST_CHECK_EQUAL(dm->stats().reads, kOps);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(randomized)

// ~3000 random operations against a model of page images, with reopens that
// sometimes switch backend. Replay a failure with `-- --seed=N`.
BOOST_DATA_TEST_CASE(matches_model, ALL_BACKENDS, cfg) {
  const std::uint64_t seed = corobtree::test::test_seed("disk_manager random " + cfg.name());
  std::mt19937_64 rng(seed);
  TempDir dir;
  const std::string path = dir.file("random.db");
  BackendConfig current = cfg;
  auto dm = DiskManager::open(path, current.options());
  const std::uint32_t ps = dm->page_size();
  std::vector<std::vector<std::byte>> model;
  int op = 0;
  const auto where = [&] {
    return "seed " + std::to_string(seed) + " op " + std::to_string(op) + " (" + current.name() +
           ")";
  };
  try {
    for (op = 0; op < 3000; ++op) {
      const auto dice = rng() % 100;
      if (model.empty() || dice < 8) {
        const std::uint64_t n = 1 + rng() % 3;
        const BlockId first = dm->allocate_blocks(n);
        BOOST_REQUIRE_MESSAGE(first == model.size(), where() << ": allocate returned " << first);
        model.resize(model.size() + n, std::vector<std::byte>(ps));
      } else if (dice < 45) {
        const BlockId id = rng() % model.size();
        std::vector<std::byte> data(rng() % (ps + 1));
        for (std::byte& b : data) b = static_cast<std::byte>(rng());
        write_now(*dm, id, data);
        std::fill(model[id].begin(), model[id].end(), std::byte{0});
        std::copy(data.begin(), data.end(), model[id].begin());
      } else if (dice < 88) {
        const BlockId id = rng() % model.size();
        // Sometimes misaligned, so O_DIRECT reads go through the bounce buffer.
        AlignedBuffer storage(ps + 64);
        const std::span<std::byte> out(storage.data() + (rng() % 4 == 0 ? 8 : 0), ps);
        std::memset(out.data(), 0xCD, ps);
        sync_wait(dm->read_block(id, out));
        const auto diff = std::mismatch(out.begin(), out.end(), model[id].begin());
        BOOST_REQUIRE_MESSAGE(diff.first == out.end(), where() << ": block " << id
                                                               << " differs at byte "
                                                               << (diff.first - out.begin()));
      } else if (dice < 93) {
        sync_wait(dm->sync());
      } else if (dice < 97) {
        const BlockId id = model.size() + rng() % 3;
        AlignedBuffer page(ps);
        bool out_of_range = false;
        try {
          sync_wait(dm->read_block(id, page.span()));
        } catch (const Error& e) {
          out_of_range = e.code() == ErrorCode::kOutOfRange;
        }
        BOOST_REQUIRE_MESSAGE(out_of_range, where() << ": block " << id << " not kOutOfRange");
      } else {
        // Only the file survives: reopen, sometimes on the other backend.
        if (rng() % 2) current = other_backend(current);
        if (rng() % 2) dm->close();
        dm.reset();
        dm = DiskManager::open(path, current.options());
        BOOST_REQUIRE_MESSAGE(dm->block_count() == model.size(),
                              where() << ": reopened with " << dm->block_count() << " blocks");
      }
    }
    dm.reset();
    dm = DiskManager::open(path, cfg.options());
    BOOST_REQUIRE_EQUAL(dm->block_count(), model.size());
    for (BlockId id = 0; id < model.size(); ++id) {
      const AlignedBuffer got = read_now(*dm, id);
      BOOST_REQUIRE_MESSAGE(std::equal(model[id].begin(), model[id].end(), got.data()),
                            where() << ": final check of block " << id);
    }
  } catch (const std::exception& e) {
    BOOST_FAIL(where() << ": unexpected exception: " << e.what());
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(backend_selection)

BOOST_AUTO_TEST_CASE(names_round_trip) {
  for (const IoBackend b : {IoBackend::kAuto, IoBackend::kUring, IoBackend::kPread}) {
    BOOST_CHECK_MESSAGE(parse_backend(backend_name(b)) == b, backend_name(b));
  }
  BOOST_CHECK_EQUAL(backend_name(IoBackend::kAuto), "auto");
  BOOST_CHECK_EQUAL(backend_name(IoBackend::kUring), "uring");
  BOOST_CHECK_EQUAL(backend_name(IoBackend::kPread), "pread");
  EXPECT_ERROR(ErrorCode::kInvalidArgument, kAnyPath, std::nullopt, parse_backend("bogus"));
  EXPECT_ERROR(ErrorCode::kInvalidArgument, kAnyPath, std::nullopt, parse_backend(""));
}

BOOST_AUTO_TEST_CASE(env_overrides_options) {
  const char* const before = std::getenv("COROBTREE_IO");
  const std::string before_value = before ? before : "<unset>";
  {
    TempDir dir;
    const std::string path = dir.file("env.db");
    DiskOptions options;
    options.use_env = true;
    options.backend = IoBackend::kUring;
    DiskOptions ignore_env = options;
    ignore_env.use_env = false;
    DiskOptions want_pread = options;
    want_pread.backend = IoBackend::kPread;
    {
      ScopedEnv env("COROBTREE_IO", "pread");
      check_backend(*DiskManager::open(path, options), IoBackend::kPread);
      check_backend(*DiskManager::open(path, ignore_env), IoBackend::kUring);
    }
    {
      ScopedEnv env("COROBTREE_IO", "uring");
      check_backend(*DiskManager::open(path, want_pread), IoBackend::kUring);
    }
    {
      ScopedEnv env("COROBTREE_IO", "bogus");
      auto e = EXPECT_ERROR(ErrorCode::kInvalidArgument, kAnyPath, std::nullopt,
                            DiskManager::open(path, options));
      BOOST_CHECK(e && std::string(e->what()).find("bogus") != std::string::npos);
    }
    {
      ScopedEnv env("COROBTREE_IO", "");  // empty counts as unset
      check_backend(*DiskManager::open(path, want_pread), IoBackend::kPread);
    }
    {
      ScopedEnv env("COROBTREE_IO", nullptr);
      check_backend(*DiskManager::open(path, options), IoBackend::kUring);
    }
  }
  const char* const after = std::getenv("COROBTREE_IO");
  BOOST_CHECK_EQUAL(after ? after : "<unset>", before_value);
}

BOOST_AUTO_TEST_CASE(auto_uses_uring_when_available) {
  TempDir dir;
  DiskOptions options;
  options.backend = IoBackend::kAuto;
  options.use_env = false;
  auto dm = DiskManager::open(dir.file("auto.db"), options);
  check_backend(*dm, IoBackend::kUring);
  BOOST_CHECK_EQUAL(dm->fallback_reason(), "");
}

// The real failure path: the kernel refuses io_uring_setup (a seccomp filter
// in a child makes it fail with each errno that sandboxes and old kernels give).
BOOST_AUTO_TEST_CASE(auto_falls_back_when_io_uring_setup_fails) {
#if defined(__x86_64__)
  for (const int err : {ENOSYS, EPERM, ENOMEM, EINVAL}) {
    TempDir dir;
    const std::string path = dir.file("fallback.db");
    const int code = run_in_child([&path, err] { return fallback_child(path, err); });
    const bool known = code >= 0 && code < static_cast<int>(std::size(kFallbackCodes));
    BOOST_CHECK_MESSAGE(code == 0, "io_uring_setup -> "
                                       << std::strerror(err) << ": child exit " << code << " ("
                                       << (known ? kFallbackCodes[code] : "crashed") << ")");
  }
#else
  BOOST_TEST_MESSAGE("skipped: the seccomp filter is written for x86_64");
#endif
}

BOOST_AUTO_TEST_SUITE_END()
