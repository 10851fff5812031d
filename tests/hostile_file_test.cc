// Hostile files: pages whose checksums are valid but whose contents are not
// (crafted, or written by a bug). SQLite's rule: no file may crash the engine,
// hang it, make it write out of bounds or allocate from an untrusted length.
// Each case builds a real database with the public API (512-byte pages),
// closes it, edits page bytes on disk, re-stamps the checksums, and then runs
// open, get, scan (both ways), put, erase and validate on a fresh copy: each
// must work or throw Error(kCorruption), and the ones that must touch the
// damage must throw it. No crash (the ASan build runs this too), no hang
// (every loop is bounded; each case has a timeout), no allocation from an
// untrusted length (operator new is instrumented: no single allocation may
// exceed kAllocationLimit).
//
// Cases: slots aliasing one cell, then a put (was a wild write in
// Node::compact); a root whose children are itself, also with a meta height
// of 64 (descents never ended); a leaf with keys out of order and a leaf chain
// pointing backwards (scans looped); a leaf whose next link is an inner page
// (read an inner page as a leaf); overflow cells claiming ~4 GiB, or more than
// the file could hold; cyclic overflow chains; free-list cycles and links
// outside the file or into the tree; a parent whose two children are one page
// (erase until a rebalance); a log whose interrupted checkpoint names pages
// outside the file. Every case runs on both backends, buffered and
// O_DIRECT. page::verify's structural checks are unit-tested on their own, and
// two cases run through the corobtree tool (exit 2, "corrupt", no signal).
#define BOOST_TEST_MODULE hostile_file
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/error.h>

#include "engine/btree/node.h"
#include "engine/format/meta.h"
#include "engine/format/page_format.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/support/backends.h"
#include "tests/support/file_bytes.h"
#include "tests/support/temp_dir.h"

// ---- the largest single allocation, over the whole process -------------------

// Every unaligned form of new and delete is replaced, so that all of them
// pair malloc with free (a sanitizer's own new would not match our delete).
namespace {

using corobtree::test::read_file_bytes;
using corobtree::test::write_file_bytes;
std::atomic<std::size_t> g_largest_allocation{0};

void* tracked_malloc(std::size_t n) noexcept {
  std::size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (n > seen &&
         !g_largest_allocation.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {
  }
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = tracked_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = tracked_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return tracked_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return tracked_malloc(n); }
// Out of line: inlined into a caller of new, free() looks mismatched to GCC.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace bdata = boost::unit_test::data;
namespace utf = boost::unit_test;
using corobtree::BlockId;
using corobtree::BlockingDatabase;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::kInvalidBlockId;
using corobtree::LeafCell;
using corobtree::Meta;
using corobtree::Node;
using corobtree::PageHeader;
using corobtree::PageType;
using corobtree::ScanOptions;
using corobtree::test::BackendConfig;

namespace {

constexpr std::uint32_t kPage = 512;
constexpr std::size_t kAllocationLimit = std::size_t{64} << 20;

corobtree::Options options_for(const BackendConfig& b) {
  corobtree::Options o;
  o.backend = b.backend;
  o.direct_io = b.direct_io;
  o.pool_pages = 8;  // small: pages are read from disk (and verified) again and again
  o.page_size = kPage;
  o.durability = corobtree::Durability::kRelaxed;
  return o;
}

std::string key_of(int i) {
  char k[16];
  std::snprintf(k, sizeof k, "key%05d", i);
  return k;
}

std::string value_of(int i, std::size_t size) {
  std::string v(size, '\0');
  for (std::size_t j = 0; j < size; ++j) v[j] = static_cast<char>('a' + (i + j) % 26);
  return v;
}

// A closed database's bytes, edited in memory and written back with
// re-stamped checksums.
class Image {
 public:
  explicit Image(std::string path) : path_(std::move(path)), bytes_(read_file_bytes(path_)) {
    BOOST_REQUIRE_EQUAL(bytes_.size() % kPage, 0u);
  }

  std::uint64_t pages() const noexcept { return bytes_.size() / kPage; }
  std::span<std::byte> page(BlockId id) {
    BOOST_REQUIRE_LT(id, pages());
    return {reinterpret_cast<std::byte*>(bytes_.data()) + id * kPage, kPage};
  }
  Node node(BlockId id) { return Node(page(id)); }
  PageType type(BlockId id) { return corobtree::page::type(page(id).data()); }
  void stamp(BlockId id) { corobtree::page::stamp_checksum(id, page(id)); }

  // The newest valid meta page (a clean close leaves both the same).
  Meta meta() {
    std::optional<Meta> best;
    for (BlockId id : {BlockId{0}, BlockId{1}}) {
      const corobtree::DecodedMeta d = corobtree::decode_meta(id, page(id));
      if (d.status == corobtree::MetaStatus::kValid &&
          (!best || d.meta.sequence > best->sequence)) {
        best = d.meta;
      }
    }
    BOOST_REQUIRE(best);
    return *best;
  }
  void set_meta(const Meta& m) {
    corobtree::encode_meta(m, 0, page(0));
    corobtree::encode_meta(m, 1, page(1));
  }

  // Writes the (edited) bytes over the file and removes any log.
  void save() const {
    write_file_bytes(path_, bytes_);
    std::filesystem::remove(path_ + "-wal");
    std::filesystem::remove(path_ + "-wal2");
  }
  const std::string& path() const noexcept { return path_; }

  // Tree walks over the bytes (the file is the one this test built).
  BlockId root() { return meta().state.tree.root; }
  std::uint32_t height() { return meta().state.tree.height; }
  std::vector<BlockId> leaves() {
    BlockId id = root();
    for (std::uint32_t d = 1; d < height(); ++d) id = node(id).child(0);
    std::vector<BlockId> out;
    for (; id != kInvalidBlockId && out.size() < pages(); id = node(id).next()) out.push_back(id);
    return out;
  }
  // The leaf and slot holding `key`.
  std::pair<BlockId, std::uint32_t> find(const std::string& key) {
    BlockId id = root();
    for (std::uint32_t d = 1; d < height(); ++d) id = node(id).child(node(id).child_index(key));
    Node n = node(id);
    const std::uint32_t pos = n.lower_bound(key);
    BOOST_REQUIRE(pos < n.count() && n.key(pos) == key);
    return {id, pos};
  }
  // The overflow chain of `key`'s value.
  std::vector<BlockId> chain(const std::string& key) {
    const auto [leaf, pos] = find(key);
    const Node::Value v = node(leaf).value(pos);
    BOOST_REQUIRE(v.overflow);
    std::vector<BlockId> out;
    for (BlockId id = v.first_page; id != kInvalidBlockId;
         id = PageHeader::Link0::get(page(id).data())) {
      out.push_back(id);
    }
    return out;
  }

 private:
  std::string path_;
  std::string bytes_;
};

// A closed database of keys key00000.. with `value_size`-byte values, plus a
// 2000-byte (overflow) value under "big" when asked; then `erased` of the keys
// erased (which fills the free list).
std::vector<std::string> build(const std::string& path, const BackendConfig& b, int keys,
                               std::size_t value_size, bool big, int erased = 0) {
  std::vector<std::string> kept;
  auto db = BlockingDatabase::open(path, options_for(b));
  for (int i = 0; i < keys; ++i) db.put(key_of(i), value_of(i, value_size));
  if (big) db.put("big", value_of(7, 2000));
  for (int i = 0; i < keys; ++i) {
    if (i < erased) {
      BOOST_REQUIRE(db.erase(key_of(i)));
    } else {
      kept.push_back(key_of(i));
    }
  }
  const auto report = db.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  db.close();
  return kept;
}

using Op = std::function<void(BlockingDatabase&)>;

// Opens a fresh copy of the hostile file and runs `op`. Success or
// Error(kCorruption) pass; any other error, or a single allocation above
// kAllocationLimit, fails the test. Returns whether kCorruption was thrown.
bool corrupt_on(const Image& image, const BackendConfig& b, const std::string& what, const Op& op) {
  image.save();
  g_largest_allocation.store(0);
  bool corruption = false;
  try {
    auto db = BlockingDatabase::open(image.path(), options_for(b));
    op(db);
    db.close();
  } catch (const Error& e) {
    BOOST_TEST_MESSAGE(b.name() << ": " << what << ": " << e.what());
    BOOST_REQUIRE_MESSAGE(
        e.code() == ErrorCode::kCorruption,
        what << " threw " << corobtree::error_code_name(e.code()) << ": " << e.what());
    corruption = true;
  }
  const std::size_t largest = g_largest_allocation.load();
  BOOST_TEST_MESSAGE(what << ": largest allocation " << largest << " bytes");
  BOOST_REQUIRE_MESSAGE(largest <= kAllocationLimit,
                        what << " allocated " << largest << " bytes at once");
  return corruption;
}

void must_fail(const Image& image, const BackendConfig& b, const std::string& what, const Op& op) {
  BOOST_REQUIRE_MESSAGE(corrupt_on(image, b, what, op), what << " did not report the corruption");
}

void may_fail(const Image& image, const BackendConfig& b, const std::string& what, const Op& op) {
  corrupt_on(image, b, what, op);
}

ScanOptions reverse() {
  ScanOptions o;
  o.reverse = true;
  return o;
}

const Op kScan = [](BlockingDatabase& db) { (void)db.scan(); };
const Op kReverseScan = [](BlockingDatabase& db) { (void)db.scan(reverse()); };

// validate() reports the damage (or throws kCorruption) and returns.
void validate_reports(const Image& image, const BackendConfig& b) {
  bool ok = false;
  const bool threw = corrupt_on(image, b, "validate", [&ok](BlockingDatabase& db) {
    const auto report = db.validate();
    BOOST_TEST_MESSAGE("validate: " << report.summary());
    ok = report.ok();
  });
  BOOST_REQUIRE_MESSAGE(threw || !ok, "validate found nothing wrong");
}

// Every operation once: gets of `keys`, scans both ways, a put and an erase of
// each of `keys`, validate. All must work or throw kCorruption.
void run_all(const Image& image, const BackendConfig& b, const std::vector<std::string>& keys) {
  may_fail(image, b, "get", [&keys](BlockingDatabase& db) {
    for (const auto& k : keys) (void)db.get(k);
  });
  may_fail(image, b, "scan", kScan);
  may_fail(image, b, "reverse scan", kReverseScan);
  may_fail(image, b, "put", [&keys](BlockingDatabase& db) {
    for (const auto& k : keys) db.put(k, "replaced");
  });
  may_fail(image, b, "insert", [](BlockingDatabase& db) {
    for (int i = 0; i < 40; ++i) db.put("new" + key_of(i), value_of(i, 40));
  });
  may_fail(image, b, "erase", [&keys](BlockingDatabase& db) {
    for (const auto& k : keys) (void)db.erase(k);
  });
  validate_reports(image, b);
}

// The tool, if it was built next to this test: `corobtree ARGS...` with
// stdout and stderr in `out`; a hang ends by SIGALRM. Returns the exit status
// (128 + signal if killed), or -1 when the tool is not there.
int run_tool(const std::vector<std::string>& args, const std::string& out) {
  const std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "tools" /
      "corobtree";
  if (!std::filesystem::exists(exe)) return -1;
  std::vector<std::string> copy = args;
  std::string exe_s = exe.string();
  std::vector<char*> argv{exe_s.data()};
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::setenv("ASAN_OPTIONS", "exitcode=99", 0);  // a sanitizer report is not exit 2
    ::alarm(120);                                // survives exec
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

void tool_reports_corruption(const Image& image, const std::vector<std::string>& args) {
  image.save();
  const std::string out = image.path() + ".out";
  const int status = run_tool(args, out);
  if (status == -1) {
    BOOST_TEST_MESSAGE("the corobtree tool is not built next to this test: skipped");
    return;
  }
  const std::string text = read_file_bytes(out);
  BOOST_TEST_MESSAGE("corobtree " << args.front() << ": exit " << status << ": " << text);
  BOOST_REQUIRE_MESSAGE(status == 2, "corobtree " << args.front() << " exited with " << status
                                                  << ":\n"
                                                  << text);
  BOOST_REQUIRE_MESSAGE(text.find("corrupt") != std::string::npos, text);
}

}  // namespace

// Each case is small; a hang is a failure, not a stuck test run.
BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(aliasing_slots_then_put, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("alias.db");
  const auto keys = build(path, backend, 3, 20, false);
  Image image(path);
  BOOST_REQUIRE_EQUAL(image.height(), 1u);
  const BlockId leaf = image.root();
  std::byte* d = image.page(leaf).data();
  const std::uint32_t cell = image.node(leaf).cell_offset(0);
  // Thirty slots, all on cell 0; some garbage so that an insert compacts.
  for (std::uint32_t i = 0; i < 30; ++i) {
    corobtree::le::store<std::uint16_t>(d, PageHeader::kSize + i * PageHeader::kSlotSize,
                                        static_cast<std::uint16_t>(cell));
  }
  PageHeader::SlotCount::set(d, 30);
  PageHeader::Garbage::set(d, 20);
  image.stamp(leaf);

  must_fail(image, backend, "put", [](BlockingDatabase& db) {
    db.put("key00001x", std::string(60, 'p'));
    db.put("key00002x", std::string(60, 'p'));
  });
  must_fail(image, backend, "get", [&keys](BlockingDatabase& db) { (void)db.get(keys[0]); });
  must_fail(image, backend, "scan", kScan);
  must_fail(image, backend, "reverse scan", kReverseScan);
  run_all(image, backend, keys);
  if (backend.backend == corobtree::IoBackend::kPread && !backend.direct_io) {
    tool_reports_corruption(image, {"put", path, "key00001x", "value"});
  }
}

BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(root_is_its_own_child, bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("cycle.db");
  const auto keys = build(path, backend, 60, 20, false);
  Image image(path);
  BOOST_REQUIRE_EQUAL(image.height(), 2u);
  const BlockId root = image.root();
  Node n = image.node(root);
  for (std::uint32_t i = 0; i <= n.count(); ++i) n.set_child(i, root);
  image.stamp(root);
  for (const std::uint32_t height : {2u, 64u}) {  // the meta page may claim any height up to 64
    Meta m = image.meta();
    m.state.tree.height = height;
    image.set_meta(m);
    BOOST_TEST_MESSAGE("height " << height);
    must_fail(image, backend, "get", [&keys](BlockingDatabase& db) { (void)db.get(keys[5]); });
    must_fail(image, backend, "scan", kScan);
    must_fail(image, backend, "reverse scan", kReverseScan);
    must_fail(image, backend, "put", [](BlockingDatabase& db) { db.put("key00005x", "v"); });
    must_fail(image, backend, "erase", [&keys](BlockingDatabase& db) { (void)db.erase(keys[5]); });
    run_all(image, backend, keys);
  }
  if (backend.backend == corobtree::IoBackend::kPread && !backend.direct_io) {
    tool_reports_corruption(image, {"scan", path});
  }
}

BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(leaf_keys_out_of_order, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("order.db");
  const auto keys = build(path, backend, 60, 20, false);
  Image image(path);
  const std::vector<BlockId> leaves = image.leaves();
  BOOST_REQUIRE_GE(leaves.size(), 3u);
  const BlockId leaf = leaves[1];
  std::byte* d = image.page(leaf).data();
  const std::uint32_t last = image.node(leaf).count() - 1;
  BOOST_REQUIRE_GE(last, 2u);
  // Swap the first and last slots: the cells are intact, their order is not.
  const auto first_off = corobtree::le::load<std::uint16_t>(d, PageHeader::kSize);
  const auto last_off =
      corobtree::le::load<std::uint16_t>(d, PageHeader::kSize + last * PageHeader::kSlotSize);
  corobtree::le::store<std::uint16_t>(d, PageHeader::kSize, last_off);
  corobtree::le::store<std::uint16_t>(d, PageHeader::kSize + last * PageHeader::kSlotSize,
                                      first_off);
  image.stamp(leaf);
  must_fail(image, backend, "scan", kScan);
  must_fail(image, backend, "reverse scan", kReverseScan);
  run_all(image, backend, keys);
}

BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(leaf_chain_points_backwards, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("backwards.db");
  const auto keys = build(path, backend, 60, 20, false);
  Image image(path);
  const std::vector<BlockId> leaves = image.leaves();
  BOOST_REQUIRE_GE(leaves.size(), 3u);
  // The third leaf's next is the first: a forward scan re-seeks into a loop.
  image.node(leaves[2]).set_next(leaves[0]);
  image.stamp(leaves[2]);
  must_fail(image, backend, "scan", kScan);
  run_all(image, backend, keys);
}

BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(leaf_next_is_an_inner_page, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("next.db");
  const auto keys = build(path, backend, 60, 20, false);
  Image image(path);
  const std::vector<BlockId> leaves = image.leaves();
  BOOST_REQUIRE_GE(leaves.size(), 2u);
  image.node(leaves[0]).set_next(image.root());
  image.stamp(leaves[0]);
  must_fail(image, backend, "scan", kScan);
  run_all(image, backend, keys);
  // And a next link past the end of the file, or to a meta page.
  for (const BlockId bad : {image.pages() + 1000, BlockId{1}}) {
    image.node(leaves[0]).set_next(bad);
    image.stamp(leaves[0]);
    must_fail(image, backend, "scan, next " + std::to_string(bad), kScan);
    run_all(image, backend, keys);
  }
}

BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(overflow_value_longer_than_the_file,
                     bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("long.db");
  auto keys = build(path, backend, 10, 20, true);
  keys.push_back("big");
  Image image(path);
  const auto [leaf, pos] = image.find("big");
  const std::uint32_t cell = image.node(leaf).cell_offset(pos);
  // ~4 GiB (over kMaxValueSize: page verification refuses the leaf) and 512
  // MiB (allowed in general, but more than this file's pages could carry).
  for (const std::uint32_t length : {0xfffffff0u, 512u << 20}) {
    LeafCell::ValueLength::set(image.page(leaf).data() + cell, length);
    image.stamp(leaf);
    BOOST_TEST_MESSAGE("claimed length " << length);
    must_fail(image, backend, "get", [](BlockingDatabase& db) { (void)db.get("big"); });
    must_fail(image, backend, "scan", kScan);
    must_fail(image, backend, "reverse scan", kReverseScan);
    run_all(image, backend, keys);
  }
}

BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(cyclic_overflow_chain, bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("chain.db");
  auto keys = build(path, backend, 10, 20, true);
  keys.push_back("big");
  Image image(path);
  const std::vector<BlockId> chain = image.chain("big");
  BOOST_REQUIRE_GE(chain.size(), 3u);
  const std::string pristine = read_file_bytes(path);
  // The last page links back to the first; the second page links to itself.
  for (const auto& [from, to] :
       {std::pair{chain.back(), chain.front()}, std::pair{chain[1], chain[1]}}) {
    Image cyclic(path);
    PageHeader::Link0::set(cyclic.page(from).data(), to);
    cyclic.stamp(from);
    BOOST_TEST_MESSAGE("overflow page " << from << " links to " << to);
    must_fail(cyclic, backend, "get", [](BlockingDatabase& db) { (void)db.get("big"); });
    must_fail(cyclic, backend, "scan", kScan);
    must_fail(cyclic, backend, "reverse scan", kReverseScan);
    must_fail(cyclic, backend, "erase", [](BlockingDatabase& db) { (void)db.erase("big"); });
    must_fail(cyclic, backend, "update", [](BlockingDatabase& db) { db.put("big", "small now"); });
    run_all(cyclic, backend, keys);
    write_file_bytes(path, pristine);
  }
}

BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(free_list_cycle, bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("free.db");
  const auto keys = build(path, backend, 200, 20, false, 150);
  const std::string pristine = read_file_bytes(path);
  Image clean(path);
  const BlockId head = clean.meta().state.tree.free_head;
  BOOST_REQUIRE_NE(head, kInvalidBlockId);
  BOOST_REQUIRE_GE(clean.meta().state.tree.free_pages, 3u);
  const BlockId leaf = clean.leaves().front();
  // The head links to itself, past the end of the file, to a meta page, into the tree.
  for (const BlockId link : {head, clean.pages() + 7, BlockId{0}, leaf}) {
    write_file_bytes(path, pristine);
    Image image(path);
    BOOST_REQUIRE(image.type(head) == PageType::kFree);
    PageHeader::Link0::set(image.page(head).data(), link);
    image.stamp(head);
    BOOST_TEST_MESSAGE("free page " << head << " links to " << link);
    // Seven overflow pages: the second allocation follows the bad link.
    must_fail(image, backend, "put that allocates",
              [](BlockingDatabase& db) { db.put("big", value_of(3, 3000)); });
    run_all(image, backend, keys);
  }
}

BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(two_children_are_one_page, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("twins.db");
  const auto keys = build(path, backend, 60, 20, false);
  Image image(path);
  BOOST_REQUIRE_EQUAL(image.height(), 2u);
  const BlockId root = image.root();
  Node n = image.node(root);
  const BlockId first = n.child(0);
  n.set_child(1, first);
  image.stamp(root);
  std::vector<std::string> in_first;
  for (std::uint32_t i = 0; i < image.node(first).count(); ++i)
    in_first.emplace_back(image.node(first).key(i));
  // Erasing the first leaf's keys underflows it: its right sibling is itself.
  must_fail(image, backend, "erase until a rebalance", [&in_first](BlockingDatabase& db) {
    for (const auto& k : in_first) (void)db.erase(k);
  });
  run_all(image, backend, keys);
}

// page::verify on its own: each structural inconsistency of a leaf page with a
// valid checksum is Error(kCorruption) naming the page.
BOOST_AUTO_TEST_CASE(verify_checks_the_page_structure) {
  std::vector<std::byte> buf(kPage);
  const std::span<std::byte> p(buf);
  const BlockId id = 9;
  auto fresh = [&] {
    Node n(p);
    Node::init(p, PageType::kLeaf);
    for (int i = 0; i < 3; ++i)
      n.insert_cell(static_cast<std::uint32_t>(i), Node::leaf_cell(key_of(i), value_of(i, 20)));
    n.insert_cell(3, Node::leaf_overflow_cell("zz", 5000, 40));
    n.remove(1);  // leaves garbage
  };
  fresh();
  corobtree::page::stamp_checksum(id, p);
  corobtree::page::verify(id, p, "unit");  // the pristine page passes

  std::byte* d = buf.data();
  const std::uint32_t heap = PageHeader::HeapStart::get(d);
  const std::uint32_t cell0 = Node(p).cell_offset(0);
  const std::uint32_t cell2 = Node(p).cell_offset(2);
  const std::vector<std::pair<std::string, std::function<void()>>> damage = {
      {"slot count past the heap", [&] { PageHeader::SlotCount::set(d, 300); }},
      {"heap start past the page", [&] { PageHeader::HeapStart::set(d, kPage + 1); }},
      {"heap start below the slots", [&] { PageHeader::HeapStart::set(d, PageHeader::kSize); }},
      {"slot below the heap",
       [&] {
         corobtree::le::store<std::uint16_t>(d, PageHeader::kSize,
                                             static_cast<std::uint16_t>(heap - 4));
       }},
      {"slot past the page",
       [&] { corobtree::le::store<std::uint16_t>(d, PageHeader::kSize, 0xfff0); }},
      {"aliasing slots",
       [&] {
         corobtree::le::store<std::uint16_t>(d, PageHeader::kSize + 2,
                                             static_cast<std::uint16_t>(cell0));
       }},
      {"overlapping cells",
       [&] {
         corobtree::le::store<std::uint16_t>(d, PageHeader::kSize,
                                             static_cast<std::uint16_t>(cell0 + 4));
       }},
      {"garbage too large", [&] { PageHeader::Garbage::set(d, PageHeader::Garbage::get(d) + 1); }},
      {"garbage too small", [&] { PageHeader::Garbage::set(d, 0); }},
      {"key too long",
       [&] {
         LeafCell::KeyLength::set(d + cell0,
                                  static_cast<std::uint16_t>(corobtree::page::max_key(kPage) + 1));
       }},
      {"value past the page", [&] { LeafCell::ValueLength::set(d + cell0, kPage); }},
      {"value length wraps", [&] { LeafCell::ValueLength::set(d + cell0, 0xffffffffu); }},
      {"unknown flags", [&] { LeafCell::Flags::set(d + cell0, 6); }},
      {"overflow value over the limit",
       [&] { LeafCell::ValueLength::set(d + cell2, 0xfffffff0u); }},
  };
  for (const auto& [what, damage_it] : damage) {
    fresh();
    damage_it();
    corobtree::page::stamp_checksum(id, p);
    try {
      corobtree::page::verify(id, p, "unit");
      BOOST_FAIL(what << ": verify accepted the page");
    } catch (const Error& e) {
      BOOST_TEST_MESSAGE(what << ": " << e.what());
      BOOST_REQUIRE(e.code() == ErrorCode::kCorruption);
      BOOST_REQUIRE(e.block() == id);
    }
  }
  // Overflow pages: a payload of 0 or more than the page holds.
  for (const std::uint32_t payload : {0u, kPage}) {
    corobtree::page::init(p, PageType::kOverflow);
    PageHeader::Payload::set(d, payload);
    corobtree::page::stamp_checksum(id, p);
    BOOST_CHECK_THROW(corobtree::page::verify(id, p, "unit"), Error);
  }
}

// A log holding a checkpoint cut short (its images and checkpoint record are
// in the log, the meta page was not written yet), made hostile; inputs from
// tests/fuzz/regressions/wal/ beside the fuzz targets' base database. Found
// by fuzz_wal: an image of a page past the checkpoint's page count was copied
// past the end of the data file (kOutOfRange), and a page count of 2^40 made
// open allocate 512 TiB (kNoSpace, or a huge sparse file). An image of a meta
// page overwrote it with a tree page. A page count of 0 truncated the data
// file to nothing, then the meta page write failed (kOutOfRange). Now such
// images are ignored, such counts (and any impossible checkpoint fields, as
// for a meta page) are kCorruption, and the meta pages stay meta pages.
BOOST_TEST_DECORATOR(*utf::timeout(300))
BOOST_DATA_TEST_CASE(log_checkpoint_outside_the_file, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("log.db");
  const std::string inputs = std::string(COROBTREE_FUZZ_DIR) + "/regressions/wal/";
  const std::pair<const char*, bool> cases[] = {
      {"checkpoint_page_count_huge", true},       {"checkpoint_page_count_zero", true},
      {"found_checkpoint_page_count_zero", true}, {"image_past_page_count", false},
      {"found_image_past_page_count", false},     {"image_of_meta_page", false},
  };
  for (const auto& [name, must_fail] : cases) {
    BOOST_TEST_MESSAGE(backend.name() << ": " << name);
    write_file_bytes(path, corobtree::fuzz::base_database());
    write_file_bytes(path + "-wal", read_file_bytes(inputs + name));
    g_largest_allocation.store(0);
    bool corruption = false;
    try {
      auto db = BlockingDatabase::open(path, options_for(backend));
      (void)db.scan();
      BOOST_TEST_MESSAGE("validate: " << db.validate().summary());
      db.close();
    } catch (const Error& e) {
      BOOST_TEST_MESSAGE(e.what());
      BOOST_REQUIRE_MESSAGE(e.code() == ErrorCode::kCorruption,
                            name << " threw " << corobtree::error_code_name(e.code()));
      corruption = true;
    }
    BOOST_REQUIRE_MESSAGE(corruption || !must_fail, name << " did not report the corruption");
    BOOST_REQUIRE_LE(g_largest_allocation.load(), kAllocationLimit);
    // Nothing was allocated from the count, and no image landed on a meta page.
    const std::string bytes = read_file_bytes(path);
    BOOST_REQUIRE_LE(bytes.size(), corobtree::fuzz::base_database().size() + 64 * kPage);
    for (const std::size_t meta : {0, 1}) {
      BOOST_REQUIRE(corobtree::page::type(reinterpret_cast<const std::byte*>(bytes.data()) +
                                          meta * kPage) == PageType::kMeta);
    }
  }
}
