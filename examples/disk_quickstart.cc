// The io layer on its own: write a few blocks, sync, read them back.
// Usage: disk_quickstart [FILE]   (COROBTREE_IO=uring|pread picks the backend)
#include <cstdio>
#include <cstring>
#include <string>

#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"

namespace {

corobtree::Task<void> write_greeting(corobtree::DiskManager& dm, corobtree::BlockId id) {
  std::string text = "hello from block " + std::to_string(id);
  co_await dm.write_block(id, std::as_bytes(std::span(text)));  // zero-padded to a page
}

corobtree::Task<std::string> read_greeting(corobtree::DiskManager& dm, corobtree::BlockId id) {
  corobtree::AlignedBuffer page(dm.page_size());
  co_await dm.read_block(id, page.span());
  co_return std::string(reinterpret_cast<const char*>(page.data()));
}

corobtree::Task<void> run(corobtree::DiskManager& dm) {
  std::vector<corobtree::Task<void>> writes;
  for (int i = 0; i < 4; ++i) writes.push_back(write_greeting(dm, dm.allocate_block()));
  co_await corobtree::when_all(std::move(writes));  // all four writes in flight together
  co_await dm.sync();
  for (corobtree::BlockId id = 0; id < dm.block_count(); ++id) {
    std::string s = co_await read_greeting(dm, id);
    std::printf("block %llu: %s\n", static_cast<unsigned long long>(id), s.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : "disk_quickstart.db";
  try {
    std::remove(path.c_str());
    auto dm = corobtree::DiskManager::open(path);
    std::printf("backend: %s%s%s\n", std::string(corobtree::backend_name(dm->backend())).c_str(),
                dm->fallback_reason().empty() ? "" : " (fell back: ",
                dm->fallback_reason().empty() ? "" : (dm->fallback_reason() + ")").c_str());
    corobtree::sync_wait(run(*dm));
  } catch (const corobtree::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
