// The installed Asio adapter (corobtree::asio), mode 1: a put and a get
// completed on an io_context that drives the thread.
#include <corobtree/asio.h>
#include <corobtree/database.h>
#include <corobtree/sync_wait.h>

#include <cstdio>
#include <exception>
#include <optional>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto db = corobtree::sync_wait(corobtree::Database::open(argv[1]));
  bool ok = false;
  {
    asio::io_context ioc;
    corobtree::AsioDriver driver(ioc);
    const corobtree::AsioRunner here = corobtree::AsioRunner::this_thread();
    corobtree::async_put(here, *db, "k", "v", [&](std::exception_ptr e) {
      if (e) return;
      corobtree::async_get(here, *db, "k",
                           [&](std::exception_ptr e2, std::optional<std::string> v) {
                             ok = !e2 && v == std::optional<std::string>("v");
                           });
    });
    ioc.run();
  }
  corobtree::sync_wait(db->close());
  std::printf("consumer asio %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
