// The fuzz targets' entry functions, shared by the libFuzzer binaries
// (tests/fuzz/fuzz_main.cc, built with -DCOROBTREE_FUZZ=ON and clang) and by
// the regression runner that every CI build runs (tests/fuzz_regression_test.cc,
// any compiler, no libFuzzer). Each entry takes one input and returns 0; it
// aborts (or lets an unexpected exception escape) when the engine breaks a
// rule: a crash, a sanitizer report, an error other than the expected typed
// one, or a broken invariant. docs/contributing.md, "Fuzzing", says how to
// run them.
//
//   data_file  the bytes of a database file (512-byte pages): open it, then
//              scan both ways, get, validate, put (inline and overflow
//              values) and erase. Each operation may work or throw
//              Error(kCorruption); nothing else is allowed.
//   wal        the bytes of a -wal file beside a fixed valid database
//              (base_database()): open replays it, then scan, validate, put.
//   page       one 512-byte page: page::verify, decode_meta; a page that
//              verifies is decoded through Node (keys, values, children,
//              searches) and mutated (remove, compact, insert), after which it
//              must still verify.
//   escape     text for the CLI's escape and dump-line parsers: each parse
//              works or throws EscapeError, and every round trip is exact.
//
// Restamping: after libFuzzer mutates an input, restamp_<target>() makes its
// checksums valid again (page and meta CRCs; the log header's CRC and record
// CRC chain, with the base database's id), so mutations reach the decoders
// instead of dying at the CRC check.
//
// Thread-safety: none; one input at a time per process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <corobtree/options.h>

namespace corobtree::fuzz {

// Every target, for the drivers: X(name).
#define COROBTREE_FUZZ_TARGETS(X) X(data_file) X(wal) X(page) X(escape)

// The page size of every database the targets build or expect.
inline constexpr std::uint32_t kFuzzPageSize = 512;

int data_file_one_input(const std::uint8_t* data, std::size_t size);
int wal_one_input(const std::uint8_t* data, std::size_t size);
int page_one_input(const std::uint8_t* data, std::size_t size);
int escape_one_input(const std::uint8_t* data, std::size_t size);

// Re-stamp the checksums of a mutated input in place (escape has none).
void data_file_restamp(std::uint8_t* data, std::size_t size);
void wal_restamp(std::uint8_t* data, std::size_t size);
void page_restamp(std::uint8_t* data, std::size_t size);
void escape_restamp(std::uint8_t* data, std::size_t size);

// The backend the disk targets open files with: pread by default (no ring
// needed to reach the decoders); the regression runner runs both backends.
void set_backend(IoBackend backend, bool direct_io);

// The bytes of the fixed database the wal target replays logs against: 40
// keys in 512-byte pages, closed cleanly, with the database id kBaseDatabaseId
// (so that its bytes are the same in every run).
inline constexpr std::uint64_t kBaseDatabaseId = 0x66757a7a62617365ull;  // "esabzzuf"
const std::string& base_database();

// The key and value the targets and the corpus generator write: key i, and a
// value of `size` bytes.
std::string fuzz_key(int i);
std::string fuzz_value(int i, std::size_t size);

}  // namespace corobtree::fuzz
