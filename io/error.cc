#include <corobtree/error.h>

#include <cerrno>
#include <cstring>

namespace corobtree {

namespace {

std::string compose(ErrorCode code, const std::string& message) {
  std::string out = "corobtree: ";
  out += error_code_name(code);
  out += ": ";
  out += message;
  return out;
}

const char* errno_name(int err) {
  switch (err) {
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EFBIG: return "EFBIG";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    case EROFS: return "EROFS";
    case EISDIR: return "EISDIR";
    default: return "errno";
  }
}

}  // namespace

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIoError: return "I/O error";
    case ErrorCode::kNoSpace: return "no space";
    case ErrorCode::kOutOfRange: return "out of range";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kClosed: return "closed";
    case ErrorCode::kCorruption: return "corruption";
    case ErrorCode::kLocked: return "locked";
    case ErrorCode::kNotSupported: return "not supported";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kDeadlock: return "deadlock";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message, int sys_errno, std::string path,
             std::optional<std::uint64_t> block)
    : std::runtime_error(compose(code, message)),
      code_(code),
      sys_errno_(sys_errno),
      path_(std::move(path)),
      block_(block) {}

ErrorCode error_code_from_errno(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return ErrorCode::kNoSpace;
    case EINVAL: return ErrorCode::kInvalidArgument;
    case ENOENT: return ErrorCode::kNotFound;
    case ENOSYS:
    case EOPNOTSUPP: return ErrorCode::kNotSupported;
    default: return ErrorCode::kIoError;
  }
}

Error errno_error(int err, std::string_view operation, const std::string& path,
                  std::optional<std::uint64_t> block) {
  std::string msg(operation);
  if (block) msg += " of block " + std::to_string(*block);
  msg += " in '" + path + "' failed: ";
  msg += std::strerror(err);
  msg += " (";
  msg += errno_name(err);
  msg += ")";
  return Error(error_code_from_errno(err), msg, err, path, block);
}

}  // namespace corobtree
