// The file lock (io/file_lock.h) and Options::lock_timeout, on every backend:
//  * a live holder (a child process with the database open) makes an open
//    with lock_timeout 200 ms fail with kLocked, after waiting the timeout
//    (at least ~200 ms, far less than a hang), naming the path and the wait;
//  * a holder that closes 100 ms later lets an open with a 2 s timeout in;
//  * lock_timeout 0 still fails at once, and a negative one is refused;
//  * a forked child that exits (sharing the lock's description) does not take
//    the lock with it;
//  * a holder gone but for its I/O descriptor (a killed process's unfinished
//    io_uring requests) makes the next open wait, not fail.
// The killed-process case is tests/crash_kill_test.cc, restart_right_after_sigkill.
#define BOOST_TEST_MODULE lock
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <corobtree/blocking_database.h>
#include "io/disk_manager.h"
#include "tests/support/backends.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::BlockingDatabase;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::test::BackendConfig;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

corobtree::Options options_for(const BackendConfig& b, milliseconds lock_timeout) {
  corobtree::Options o;
  o.backend = b.backend;
  o.direct_io = b.direct_io;
  o.pool_pages = 16;
  o.durability = corobtree::Durability::kRelaxed;
  o.lock_timeout = lock_timeout;
  return o;
}

// A child process that holds the database open: it opens it, says so on a
// pipe, and closes it `hold` later, or once the parent closes its end of the
// release pipe when `hold` is empty.
class Holder {
 public:
  Holder(const std::string& path, const BackendConfig& backend, std::optional<milliseconds> hold) {
    int ready[2];
    int release[2];
    BOOST_REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    BOOST_REQUIRE(::pipe2(release, O_CLOEXEC) == 0);
    std::fflush(nullptr);
    pid_ = ::fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      int code = 0;
      try {
        BlockingDatabase db = BlockingDatabase::open(path, options_for(backend, milliseconds(0)));
        (void)!::write(ready[1], "r", 1);
        if (hold) {
          ::usleep(static_cast<useconds_t>(hold->count() * 1000));
        } else {
          char c;
          while (::read(release[0], &c, 1) < 0 && errno == EINTR) {
          }
        }
        db.close();
      } catch (...) {
        code = 1;
      }
      ::_exit(code);
    }
    ::close(ready[1]);
    ::close(release[0]);
    release_ = release[1];
    char c = 0;
    const ssize_t n = ::read(ready[0], &c, 1);
    ::close(ready[0]);
    BOOST_REQUIRE_MESSAGE(n == 1, "the holder did not open the database");
  }
  ~Holder() { BOOST_CHECK_EQUAL(finish(), 0); }
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;

  // Lets it close (if it waits for that) and returns its exit status.
  int finish() {
    if (release_ >= 0) ::close(std::exchange(release_, -1));
    if (pid_ <= 0) return 0;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
  }

 private:
  pid_t pid_ = -1;
  int release_ = -1;
};

void create_db(const std::string& path, const BackendConfig& backend) {
  BlockingDatabase db = BlockingDatabase::open(path, options_for(backend, milliseconds(0)));
  db.put("k", "v");
  db.close();
}

double ms_since(steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady_clock::now() - t0).count();
}

}  // namespace

BOOST_DATA_TEST_CASE(live_holder_outlasts_the_timeout, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("held.db");
  create_db(path, backend);
  Holder holder(path, backend, std::nullopt);  // holds until finish()

  const auto t0 = steady_clock::now();
  std::optional<Error> error;
  try {
    BlockingDatabase::open(path, options_for(backend, milliseconds(200)));
  } catch (const Error& e) {
    error = e;
  }
  const double waited = ms_since(t0);
  BOOST_REQUIRE_MESSAGE(error.has_value(), "opened a database another process holds");
  BOOST_TEST(static_cast<int>(error->code()) == static_cast<int>(ErrorCode::kLocked));
  const std::string what = error->what();
  BOOST_TEST(what.find(path) != std::string::npos, what);
  BOOST_TEST(what.find("200 ms") != std::string::npos, what);
  // It waited the timeout (less a little for clock granularity), and did not hang.
  BOOST_TEST(waited >= 190.0, "gave up after " << waited << " ms");
  BOOST_TEST(waited < 10000.0, "gave up after " << waited << " ms");

  // Timeout 0: at once, the message as before.
  const auto t1 = steady_clock::now();
  try {
    BlockingDatabase::open(path, options_for(backend, milliseconds(0)));
    BOOST_ERROR("opened a database another process holds");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(ErrorCode::kLocked));
  }
  BOOST_TEST(ms_since(t1) < 190.0);
  BOOST_TEST(holder.finish() == 0);

  BlockingDatabase db = BlockingDatabase::open(path, options_for(backend, milliseconds(0)));
  BOOST_TEST((db.get("k") == std::optional<std::string>("v")));
}

BOOST_DATA_TEST_CASE(holder_that_closes_in_time_lets_the_open_in,
                     bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("held.db");
  create_db(path, backend);
  Holder holder(path, backend, milliseconds(100));  // closes 100 ms after opening

  const auto t0 = steady_clock::now();
  BlockingDatabase db = BlockingDatabase::open(path, options_for(backend, milliseconds(2000)));
  const double waited = ms_since(t0);
  BOOST_TEST_MESSAGE(backend << ": the open waited " << waited << " ms for the holder");
  BOOST_TEST((db.get("k") == std::optional<std::string>("v")));
  db.put("k2", "v2");
  db.close();
  BOOST_TEST(holder.finish() == 0);
}

BOOST_AUTO_TEST_CASE(negative_timeout_is_an_invalid_argument) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("x.db");
  corobtree::DiskOptions o;
  o.lock_timeout = milliseconds(-1);
  try {
    corobtree::DiskManager::open(path, o);
    BOOST_ERROR("opened with a negative lock timeout");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(ErrorCode::kInvalidArgument));
  }
}

// flock belongs to the description, which fork shares: a child that inherits
// the open handle, closes it and exits must leave the parent's lock in place
// (FileLock never unlocks explicitly).
BOOST_DATA_TEST_CASE(forked_child_exit_keeps_the_lock, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("x.db");
  std::unique_ptr<corobtree::DiskManager> dm =
      corobtree::DiskManager::open(path, backend.options());
  auto try_open_in_child = [&]() {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        corobtree::DiskOptions o = backend.options();
        o.backend = corobtree::IoBackend::kPread;  // no ring needed in the child
        corobtree::DiskManager::open(path, o);
      } catch (const Error& e) {
        code = e.code() == ErrorCode::kLocked ? 1 : 2;
      } catch (...) {
        code = 3;
      }
      ::_exit(code);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
  };
  // A child that inherits the handle, closes its copy and exits.
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    dm->close();
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  BOOST_TEST(try_open_in_child() == 1);  // still locked by us
  dm->close();
  BOOST_TEST(try_open_in_child() == 0);  // released on close
}

// A holder that let go of its lock while its I/O descriptor lives on (as a
// killed process's does while the kernel finishes its io_uring requests; here
// a dup kept for 100 ms stands in for them): the next open does not fail, it
// waits for that description to go (io/file_lock.h, wait_for_io_drain).
BOOST_DATA_TEST_CASE(unfinished_io_of_a_gone_holder_is_waited_for,
                     bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("x.db");
  std::unique_ptr<corobtree::DiskManager> first =
      corobtree::DiskManager::open(path, backend.options());
  const int in_flight = ::dup(first->native_handle());
  BOOST_REQUIRE(in_flight >= 0);
  first->close();  // the lock goes; the description stays

  std::thread finisher([in_flight] {
    std::this_thread::sleep_for(milliseconds(100));
    ::close(in_flight);
  });
  const auto t0 = steady_clock::now();
  std::unique_ptr<corobtree::DiskManager> second;
  try {
    second = corobtree::DiskManager::open(path, backend.options());  // lock_timeout 0
  } catch (const Error& e) {
    BOOST_ERROR("open failed: " << e.what());
  }
  const double waited = ms_since(t0);
  finisher.join();
  BOOST_TEST(second != nullptr);
  BOOST_TEST(waited >= 90.0, "opened after " << waited << " ms, before the old I/O was done");
  BOOST_TEST(waited < 10000.0, "opened after " << waited << " ms");
}
