// A program that uses an installed corobtree through its public headers only.
#include <corobtree/blocking_database.h>
#include <corobtree/version.h>

#include <cstdio>
#include <string>

#if COROBTREE_VERSION < 200
#error "the installed headers carry no version macros"
#endif

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  bool ok = false;
  {
    auto db = corobtree::BlockingDatabase::open(argv[1]);
    db.put("hello", "world");
    ok = db.get("hello") == std::optional<std::string>("world") && db.validate().ok();
    db.close();
  }
  {
    auto again = corobtree::BlockingDatabase::open(argv[1]);
    ok = ok && again.get("hello") == std::optional<std::string>("world");
  }
  std::printf("corobtree %s (headers %d.%d.%d): consumer %s\n",
              std::string(corobtree::version()).c_str(), COROBTREE_VERSION_MAJOR,
              COROBTREE_VERSION_MINOR, COROBTREE_VERSION_PATCH, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
