// The Database API without coroutines: BlockingDatabase runs each call to
// completion on the calling thread.
// Usage: blocking_quickstart [FILE]   (default quickstart.db; the file is replaced)
#include <cstdio>
#include <string>

#include <corobtree/blocking_database.h>
#include <corobtree/error.h>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "quickstart.db";
  std::remove(path.c_str());
  try {
    auto db = corobtree::BlockingDatabase::open(path);
    const char* names[] = {"zero", "one", "two", "three", "four", "five"};
    for (int i = 0; i < 6; ++i) db.put(std::to_string(i), names[i]);
    std::printf("get 3 -> %s\n", db.get("3").value_or("(absent)").c_str());
    std::printf("erase 2 -> %s\n", db.erase("2") ? "erased" : "absent");
    for (const auto& [key, value] : db.scan()) {
      std::printf("  %s = %s\n", key.c_str(), value.c_str());
    }
    const corobtree::ValidationReport report = db.validate();
    std::printf("validate: %s\n", report.summary().c_str());
    db.close();
    if (!report.ok()) return 1;
  } catch (const corobtree::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::printf("quickstart ok\n");
  return 0;
}
