// Typed errors for the whole public API.
//
// corobtree reports every expected failure (I/O error, disk full, corruption, bad
// argument, closed handle, locked file, ...) by throwing corobtree::Error, whose
// code() says what kind of failure it is and whose message names the file, the
// block and the cause. Absence of a key is not an error: lookups return
// std::optional. A Task<T> captures the exception and rethrows it at co_await,
// so async and blocking callers see the same errors.
//
// Thread-safety: Error is an immutable value type.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <corobtree/export.h>

namespace corobtree {

enum class ErrorCode {
  kIoError,          // EIO and other unexpected errno values
  kNoSpace,          // ENOSPC / EDQUOT / EFBIG
  kOutOfRange,       // block id at or past the end of the file
  kInvalidArgument,  // bad block id, oversized write, bad option
  kClosed,           // operation on a closed (or poisoned) handle
  kCorruption,       // on-disk data fails validation
  kLocked,           // another process holds the file
  kNotSupported,     // the requested backend/feature is unavailable here
  kNotFound,         // a file that must exist does not
  kDeadlock,         // a task waits on something that can never happen
};

COROBTREE_EXPORT std::string_view error_code_name(ErrorCode code);

class COROBTREE_EXPORT Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message, int sys_errno = 0, std::string path = {},
        std::optional<std::uint64_t> block = std::nullopt);

  ErrorCode code() const noexcept { return code_; }
  // The errno behind the failure, or 0.
  int sys_errno() const noexcept { return sys_errno_; }
  const std::string& path() const noexcept { return path_; }
  std::optional<std::uint64_t> block() const noexcept { return block_; }

 private:
  ErrorCode code_;
  int sys_errno_;
  std::string path_;
  std::optional<std::uint64_t> block_;
};

// Maps an errno value to an ErrorCode (ENOSPC -> kNoSpace, ...).
COROBTREE_EXPORT ErrorCode error_code_from_errno(int err);

// Builds "OPERATION of block B in 'PATH' failed: strerror (ENAME)" with the right code.
COROBTREE_EXPORT Error errno_error(int err, std::string_view operation, const std::string& path,
                                   std::optional<std::uint64_t> block = std::nullopt);

}  // namespace corobtree
