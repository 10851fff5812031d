// Whole-file byte access for tests that damage database files on disk, and
// run_in_child for tests that must run something in a forked process.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace corobtree::test {

// The file's bytes. Throws std::runtime_error if it cannot be read whole.
std::string read_file_bytes(const std::string& path);
// Replaces the file's contents. Throws std::runtime_error on failure.
void write_file_bytes(const std::string& path, const std::string& bytes);

// Runs `child` in a forked process and returns its exit code (128 + signal if
// killed). The child always _exits: it never returns into the test framework.
template <typename F>
int run_in_child(F&& child) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = child();
    } catch (...) {
    }
    ::_exit(code);
  }
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace corobtree::test
