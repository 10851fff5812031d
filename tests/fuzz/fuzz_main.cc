// The libFuzzer binary of one target (tests/fuzz/fuzz_targets.h): the build
// defines COROBTREE_FUZZ_NAME (data_file, wal, page or escape). The custom
// mutator lets libFuzzer mutate, then re-stamps the input's checksums.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/fuzz_targets.h"

#define COROBTREE_FUZZ_CAT2(a, b) a##b
#define COROBTREE_FUZZ_CAT(a, b) COROBTREE_FUZZ_CAT2(a, b)

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

// Files of the disk targets go to /dev/shm when there is one: no disk I/O.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  corobtree::fuzz::prefer_tmpfs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return corobtree::fuzz::COROBTREE_FUZZ_CAT(COROBTREE_FUZZ_NAME, _one_input)(data, size);
}

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int /*seed*/) {
  size = LLVMFuzzerMutate(data, size, max_size);
  corobtree::fuzz::COROBTREE_FUZZ_CAT(COROBTREE_FUZZ_NAME, _restamp)(data, size);
  return size;
}
