// Helpers shared by the fuzz targets (tests/fuzz/fuzz_targets.h): a scratch
// directory for the files of one input, and the checks every disk target
// makes on errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <corobtree/error.h>
#include <corobtree/options.h>

namespace corobtree::fuzz {

// A directory for this process, made at first use under
// $COROBTREE_FUZZ_TMPDIR, else /dev/shm if prefer_tmpfs() was called (the
// libFuzzer binaries do; tmpfs has no O_DIRECT), else $TMPDIR or /tmp;
// removed at exit.
const std::string& scratch_dir();
void prefer_tmpfs();

// Writes `bytes` as scratch_dir()/name (replacing it); returns the path.
std::string write_scratch(const std::string& name, std::string_view bytes);
// Removes every file in scratch_dir() (between inputs).
void clear_scratch();

// Options for a database of the fuzz targets: the chosen backend, a small pool
// (pages are read and verified again and again), relaxed durability.
Options fuzz_options();

// Aborts with a message: the target found a bug.
[[noreturn]] void fail(const std::string& what);

// Runs `op`. Success or Error(kCorruption) pass (and return true for the
// corruption), and so does Error(`also`); so does Error(kClosed) once an
// earlier operation reported corruption (`corrupt`). Anything else aborts.
bool expect_ok_or_corrupt(const char* what, bool corrupt, const std::function<void()>& op,
                          ErrorCode also = ErrorCode::kCorruption);

}  // namespace corobtree::fuzz
