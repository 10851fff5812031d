#define BOOST_TEST_MODULE asio_adapter
#include <boost/test/unit_test.hpp>

#include <corobtree/asio.h>
#include <corobtree/sync_wait.h>
#include "tests/support/temp_dir.h"

BOOST_AUTO_TEST_CASE(smoke) {
  corobtree::test::TempDir dir;
  auto db = corobtree::sync_wait(corobtree::Database::open(dir.file("db")));
  int done = 0;
  {
    asio::io_context ioc;
    corobtree::AsioDriver driver(ioc);
    auto here = corobtree::AsioRunner::this_thread();
    corobtree::async_put(here, *db, "k", "v", [&](std::exception_ptr e) {
      BOOST_CHECK(!e);
      corobtree::async_get(corobtree::AsioRunner::this_thread(), *db, "k",
                           [&](std::exception_ptr e2, std::optional<std::string> v) {
                             BOOST_CHECK(!e2);
                             BOOST_CHECK(v == std::optional<std::string>("v"));
                             ++done;
                           });
    });
    ioc.run();
  }
  BOOST_CHECK_EQUAL(done, 1);
  corobtree::Runtime rt(2);
  asio::io_context ioc2;
  auto f = corobtree::async_get(corobtree::AsioRunner(rt), *db, "k", asio::use_future);
  BOOST_CHECK(f.get() == std::optional<std::string>("v"));
  corobtree::sync_wait(db->close());
}
