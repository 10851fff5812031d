// Writes and reads back one block through the installed library.
#include <cstdio>
#include <cstring>
#include <vector>

#include "engine/version.h"
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"
#include "io/sync_wait.h"

namespace {

corobtree::Task<bool> round_trip(corobtree::DiskManager& dm) {
  corobtree::BlockId id = dm.allocate_block();
  corobtree::AlignedBuffer out(dm.page_size());
  std::memcpy(out.data(), "hello", 5);
  co_await dm.write_block(id, out.span());
  corobtree::AlignedBuffer in(dm.page_size());
  co_await dm.read_block(id, in.span());
  co_return std::memcmp(in.data(), "hello", 5) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto dm = corobtree::DiskManager::open(argv[1]);
  bool ok = corobtree::sync_wait(round_trip(*dm));
  std::printf("corobtree %s on %s: consumer %s\n", std::string(corobtree::version()).c_str(),
              std::string(corobtree::backend_name(dm->backend())).c_str(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
