#include "tests/support/seed.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string_view>

namespace corobtree::test {

std::uint64_t test_seed(const std::string& what) {
  std::uint64_t seed = 0;
  bool found = false;
  auto& master = boost::unit_test::framework::master_test_suite();
  for (int i = 1; i < master.argc; ++i) {
    std::string_view arg = master.argv[i];
    if (arg.rfind("--seed=", 0) == 0) {
      seed = std::stoull(std::string(arg.substr(7)));
      found = true;
    }
  }
  if (!found) {
    if (const char* env = std::getenv("COROBTREE_SEED"); env && *env) {
      seed = std::stoull(env);
      found = true;
    }
  }
  if (!found) seed = std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32);
  std::cout << "[seed] " << what << ": " << seed << "  (replay with -- --seed=" << seed << ")"
            << std::endl;
  return seed;
}

double test_scale() {
  const char* env = std::getenv("COROBTREE_TEST_SCALE");
  if (!env || !*env) return 1.0;
  const double v = std::strtod(env, nullptr);
  return v > 0 ? v : 1.0;
}

int scaled(int n, int minimum) {
  const int v = static_cast<int>(n * test_scale());
  return v < minimum ? minimum : v;
}

}  // namespace corobtree::test
