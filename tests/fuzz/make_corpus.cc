// Writes the seed corpora of the fuzz targets (tests/fuzz/fuzz_targets.h) from
// real files: `fuzz_make_corpus DIR` fills DIR/<target>/ (the committed ones
// are tests/fuzz/corpus/). Databases use 512-byte pages and stay a few KiB.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

#include <corobtree/blocking_database.h>
#include <corobtree/write_batch.h>

#include "io/disk_manager.h"
#include "io/forwarding_disk.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tools/escape.h"

namespace fs = std::filesystem;
using corobtree::BlockingDatabase;
using corobtree::fuzz::fuzz_key;
using corobtree::fuzz::fuzz_value;
using corobtree::fuzz::kFuzzPageSize;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::cout << path.string() << ": " << bytes.size() << " bytes\n";
}

// Drops whole trailing blocks of zeros (a log grows in preallocated steps).
std::string trim_zero_blocks(std::string bytes) {
  while (bytes.size() >= kFuzzPageSize &&
         std::all_of(bytes.end() - kFuzzPageSize, bytes.end(), [](char c) { return c == 0; })) {
    bytes.resize(bytes.size() - kFuzzPageSize);
  }
  return bytes;
}

corobtree::Options options() {
  corobtree::Options o = corobtree::fuzz::fuzz_options();
  o.page_size = kFuzzPageSize;
  o.wal_checkpoint_bytes = std::uint64_t{1} << 30;  // keep every commit in the log
  return o;
}

// A database built by `fill`, closed; its bytes.
std::string database(const std::function<void(BlockingDatabase&)>& fill) {
  corobtree::fuzz::clear_scratch();
  const std::string path = corobtree::fuzz::scratch_dir() + "/seed";
  {
    auto db = BlockingDatabase::open(path, options());
    fill(db);
    db.close();
  }
  std::string bytes = read_all(path);
  corobtree::fuzz::clear_scratch();
  return bytes;
}

// The log `work` leaves beside the base database, copied before close.
std::string wal(const std::function<void(BlockingDatabase&)>& work) {
  corobtree::fuzz::clear_scratch();
  const std::string path = corobtree::fuzz::write_scratch("seed", corobtree::fuzz::base_database());
  std::string log;
  {
    auto db = BlockingDatabase::open(path, options());
    work(db);
    log = trim_zero_blocks(read_all(path + "-wal"));
    db.close();
  }
  corobtree::fuzz::clear_scratch();
  return log;
}

// A data file's DiskManager that copies the log (NAME-wal) when a meta page
// is written while `armed`: during a checkpoint that is after its page
// images and checkpoint record are in the log, and before it resets the log,
// so the copy is the log of a checkpoint cut short by a crash.
class MetaWriteSnapshot final : public corobtree::ForwardingDiskManager {
 public:
  MetaWriteSnapshot(std::unique_ptr<DiskManager> inner, bool& armed, std::string& out)
      : ForwardingDiskManager(std::move(inner)), armed_(armed), out_(out) {}
  corobtree::Task<void> write_block(corobtree::BlockId id,
                                    std::span<const std::byte> data) override {
    if (armed_ && id <= 1) {
      out_ = trim_zero_blocks(read_all(inner().path() + "-wal"));
      armed_ = false;
    }
    return inner().write_block(id, data);
  }

 private:
  bool& armed_;
  std::string& out_;
};

// The log of a checkpoint interrupted after its checkpoint record: commits
// with page images (evictions of a small pool), then the checkpoint's images
// and record, over the base database.
std::string interrupted_checkpoint_wal() {
  corobtree::fuzz::clear_scratch();
  const std::string path = corobtree::fuzz::write_scratch("seed", corobtree::fuzz::base_database());
  bool armed = false;
  std::string log;
  corobtree::Options o = options();
  o.wrap_disk =
      [&](std::unique_ptr<corobtree::DiskManager> d) -> std::unique_ptr<corobtree::DiskManager> {
    if (d->path() != path) return d;
    return std::make_unique<MetaWriteSnapshot>(std::move(d), armed, log);
  };
  {
    auto db = BlockingDatabase::open(path, o);
    for (int i = 0; i < 6; ++i) db.put(fuzz_key(i * 3 + 1), fuzz_value(i, 20));
    armed = true;
    db.checkpoint();
    db.close();
  }
  // The base database and this log: open must finish the checkpoint.
  corobtree::fuzz::clear_scratch();
  corobtree::fuzz::write_scratch("seed", corobtree::fuzz::base_database());
  corobtree::fuzz::write_scratch("seed-wal", log);
  {
    auto db = BlockingDatabase::open(path, options());
    const corobtree::RecoveryStats r = db.stats().recovery;
    std::cout << "interrupted checkpoint: " << r.pages << " page images, " << r.commits
              << " commits after it\n";
    if (!r.checkpoint) {
      std::cerr << "the log does not hold an interrupted checkpoint\n";
      std::exit(1);
    }
    db.close();
  }
  corobtree::fuzz::clear_scratch();
  return log;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_corpus DIR\n";
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* t : {"data_file", "wal", "page", "escape"}) fs::create_directories(root / t);

  // data_file: a two-level tree; one leaf; an overflow value; a free list.
  const std::string tree = corobtree::fuzz::base_database();
  const std::string one_leaf = database([](BlockingDatabase& db) {
    for (int i = 0; i < 6; ++i) db.put(fuzz_key(i), fuzz_value(i, 10));
  });
  const std::string overflow = database([](BlockingDatabase& db) {
    for (int i = 0; i < 8; ++i) db.put(fuzz_key(i), fuzz_value(i, 10));
    db.put("big", fuzz_value(3, 1200));
  });
  const std::string free_list = database([](BlockingDatabase& db) {
    for (int i = 0; i < 50; ++i) db.put(fuzz_key(i), fuzz_value(i, 10));
    for (int i = 0; i < 35; ++i) db.erase(fuzz_key(i));
  });
  write(root / "data_file" / "tree", tree);
  write(root / "data_file" / "one_leaf", one_leaf);
  write(root / "data_file" / "overflow", overflow);
  write(root / "data_file" / "free_list", free_list);

  // wal: puts, erases and an overflow value over the base database; a
  // batch; a checkpoint followed by more commits.
  write(root / "wal" / "puts", wal([](BlockingDatabase& db) {
          for (int i = 40; i < 46; ++i) db.put(fuzz_key(i), fuzz_value(i, 12));
          db.erase(fuzz_key(3));
        }));
  write(root / "wal" / "overflow", wal([](BlockingDatabase& db) {
          db.put("big", fuzz_value(1, 900));
          db.erase(fuzz_key(10));
        }));
  write(root / "wal" / "batch", wal([](BlockingDatabase& db) {
          corobtree::WriteBatch b;
          for (int i = 0; i < 5; ++i) b.put(fuzz_key(100 + i), fuzz_value(i, 8));
          b.erase(fuzz_key(1));
          db.write(b);
        }));
  write(root / "wal" / "after_checkpoint", wal([](BlockingDatabase& db) {
          for (int i = 0; i < 10; ++i) db.put(fuzz_key(200 + i), fuzz_value(i, 12));
          db.checkpoint();
          db.put(fuzz_key(300), fuzz_value(0, 12));
          db.erase(fuzz_key(201));
        }));

  write(root / "wal" / "interrupted_checkpoint", interrupted_checkpoint_wal());

  // page: the first page of each type (meta, leaf, inner, overflow, free) in
  // those files, with a probe key after it.
  int n = 0;
  bool seen[256] = {};
  for (const std::string* file : {&tree, &overflow, &free_list}) {
    for (std::size_t off = 0; off + kFuzzPageSize <= file->size(); off += kFuzzPageSize) {
      std::string page = file->substr(off, kFuzzPageSize);
      const auto type = static_cast<unsigned char>(page[4]);
      if (seen[type] || std::all_of(page.begin(), page.end(), [](char c) { return c == 0; })) {
        continue;
      }
      seen[type] = true;
      // Restamped for the page target's id.
      page += fuzz_key(n * 3 + 1);
      corobtree::fuzz::page_restamp(reinterpret_cast<std::uint8_t*>(page.data()), page.size());
      write(root / "page" / ("page" + std::to_string(n++)), page);
    }
  }

  // escape: dump lines and escaped arguments.
  namespace cli = corobtree::cli;
  write(root / "escape" / "dump_line",
        cli::format_dump_line("key\t1", std::string("v\0\xff\n", 4)));
  write(root / "escape" / "empty_arg", cli::escape_arg(""));
  write(root / "escape" / "escapes", "a\\x41\\\\b\\tc\\nd\\r\"e f");
  write(root / "escape" / "bad_escape", "k\\q\tv\\x4");
  return 0;
}
