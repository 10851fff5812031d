#include "engine/version.h"

namespace corobtree {

std::string_view version() noexcept { return COROBTREE_VERSION_STRING; }

}  // namespace corobtree
