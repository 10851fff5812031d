// Seeds for randomized tests: `--seed=N` after `--` on the test command line
// (e.g. `disk_manager_test -- --seed=42`) or COROBTREE_SEED=N; otherwise a
// fresh random seed. The seed is always printed so a failure can be replayed.
#pragma once

#include <cstdint>
#include <string>

namespace corobtree::test {

// Returns the seed for the test named `what` and prints it to stdout.
std::uint64_t test_seed(const std::string& what);

// Multiplier for the size of long randomized workloads: COROBTREE_TEST_SCALE
// (default 1.0). scripts/run-tests.sh lowers it for the sanitizer pass only.
double test_scale();
// n scaled by test_scale(), at least `minimum`.
int scaled(int n, int minimum = 1);

}  // namespace corobtree::test
