// TempDir: a fresh directory under $TMPDIR (or /tmp) removed with its
// contents on destruction. Tests put their database files here.
#pragma once

#include <filesystem>
#include <string>

namespace corobtree::test {

// /dev/shm when it is a writable directory (fsync costs nothing there), else
// $TMPDIR (or /tmp): for tests whose subject is not the disk's speed.
std::string fast_temp_base();

class TempDir {
 public:
  TempDir();
  // Under `base` instead of $TMPDIR (e.g. /dev/shm, where fsync costs nothing).
  explicit TempDir(const std::string& base);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  // path()/name as a string.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace corobtree::test
