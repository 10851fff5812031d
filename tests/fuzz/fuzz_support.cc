#include "tests/fuzz/fuzz_support.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tests/fuzz/fuzz_targets.h"

namespace corobtree::fuzz {
namespace {

IoBackend g_backend = IoBackend::kPread;
bool g_direct_io = false;
bool g_tmpfs = false;

std::string make_scratch_dir() {
  namespace fs = std::filesystem;
  std::string base;
  if (const char* e = std::getenv("COROBTREE_FUZZ_TMPDIR"); e != nullptr && *e != '\0') {
    base = e;
  } else if (g_tmpfs && !g_direct_io && ::access("/dev/shm", W_OK) == 0) {
    base = "/dev/shm";
  } else if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') {
    base = t;
  } else {
    base = "/tmp";
  }
  std::string templ = base + "/corobtree-fuzz-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) fail("cannot make a scratch directory under " + base);
  static std::string dir;
  dir = templ;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
  return templ;
}

}  // namespace

const std::string& scratch_dir() {
  static const std::string dir = make_scratch_dir();
  return dir;
}

std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) fail("cannot write " + path);
  return path;
}

void clear_scratch() {
  for (const auto& entry : std::filesystem::directory_iterator(scratch_dir())) {
    std::filesystem::remove(entry.path());
  }
}

Options fuzz_options() {
  Options o;
  o.backend = g_backend;
  o.direct_io = g_direct_io;
  o.page_size = 0;  // the file's
  o.pool_pages = 8;
  o.durability = Durability::kRelaxed;
  return o;
}

void set_backend(IoBackend backend, bool direct_io) {
  g_backend = backend;
  g_direct_io = direct_io;
}

void prefer_tmpfs() { g_tmpfs = true; }

void fail(const std::string& what) {
  std::fprintf(stderr, "corobtree fuzz target: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

bool expect_ok_or_corrupt(const char* what, bool corrupt, const std::function<void()>& op,
                          ErrorCode also) {
  try {
    op();
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kCorruption || e.code() == also) return true;
    if (corrupt && e.code() == ErrorCode::kClosed) return true;
    fail(std::string(what) + " threw " + std::string(error_code_name(e.code())) + ": " + e.what());
  }
  return false;
}

}  // namespace corobtree::fuzz
