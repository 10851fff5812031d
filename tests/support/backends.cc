#include "tests/support/backends.h"

#include <cstdlib>
#include <string_view>

namespace corobtree::test {

std::string BackendConfig::name() const {
  return std::string(backend_name(backend)) + (direct_io ? "+direct" : "");
}

DiskOptions BackendConfig::options(std::uint32_t page_size) const {
  DiskOptions o;
  o.page_size = page_size;
  o.backend = backend;
  o.use_env = false;
  o.direct_io = direct_io;
  return o;
}

std::ostream& operator<<(std::ostream& os, const BackendConfig& c) { return os << c.name(); }

std::vector<BackendConfig> all_backends() {
  const char* env = std::getenv("COROBTREE_IO");
  if (env != nullptr && std::string_view(env) == "pread") {
    return {{IoBackend::kPread, false}, {IoBackend::kPread, true}};
  }
  return {{IoBackend::kUring, false},
          {IoBackend::kPread, false},
          {IoBackend::kUring, true},
          {IoBackend::kPread, true}};
}

}  // namespace corobtree::test
