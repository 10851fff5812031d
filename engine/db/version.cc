#include <corobtree/version.h>

#define COROBTREE_STR2(x) #x
#define COROBTREE_STR(x) COROBTREE_STR2(x)

namespace corobtree {

std::string_view version() noexcept {
  return COROBTREE_STR(COROBTREE_VERSION_MAJOR) "." COROBTREE_STR(
      COROBTREE_VERSION_MINOR) "." COROBTREE_STR(COROBTREE_VERSION_PATCH);
}

}  // namespace corobtree
