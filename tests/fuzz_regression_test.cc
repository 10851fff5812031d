// The fuzz targets' regression runner, for every build (any compiler, no
// libFuzzer): feeds each committed input of tests/fuzz/corpus/<target>/ (the
// seeds) and tests/fuzz/regressions/<target>/ (minimized inputs of bugs the
// fuzzers found) through the same entry functions the libFuzzer binaries
// call (tests/fuzz/fuzz_targets.h). An entry aborts on a broken rule; here an
// unexpected exception fails the case. The disk targets run on every backend.
#define BOOST_TEST_MODULE fuzz_regression
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_targets.h"
#include "tests/support/backends.h"
#include "tests/support/file_bytes.h"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;

namespace {

using Entry = int (*)(const std::uint8_t*, std::size_t);

// Every committed input of `target`, seeds first, in name order.
std::vector<fs::path> inputs(const std::string& target) {
  std::vector<fs::path> out;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path dir = fs::path(COROBTREE_FUZZ_DIR) / kind / target;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().filename().string().front() != '.') {
        files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    out.insert(out.end(), files.begin(), files.end());
  }
  return out;
}

void run_all(const std::string& target, Entry entry) {
  const auto files = inputs(target);
  BOOST_TEST_MESSAGE(target << ": " << files.size() << " inputs");
  BOOST_REQUIRE_MESSAGE(!files.empty(), "no committed inputs for " << target);
  for (const auto& f : files) {
    const std::string bytes = corobtree::test::read_file_bytes(f.string());
    BOOST_TEST_CONTEXT(f.string()) {
      BOOST_CHECK_NO_THROW(
          entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    }
  }
}

}  // namespace

BOOST_DATA_TEST_CASE(data_file_inputs, bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::fuzz::set_backend(backend.backend, backend.direct_io);
  run_all("data_file", corobtree::fuzz::data_file_one_input);
}

BOOST_DATA_TEST_CASE(wal_inputs, bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::fuzz::set_backend(backend.backend, backend.direct_io);
  run_all("wal", corobtree::fuzz::wal_one_input);
}

BOOST_AUTO_TEST_CASE(page_inputs) { run_all("page", corobtree::fuzz::page_one_input); }

BOOST_AUTO_TEST_CASE(escape_inputs) { run_all("escape", corobtree::fuzz::escape_one_input); }
