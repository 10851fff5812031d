// The library's version. The macros give the version of the headers a program
// was compiled against; corobtree::version() that of the library it runs with.
// CMakeLists.txt reads the project version from the three macros below.
#pragma once

#include <string_view>

#include <corobtree/export.h>

#define COROBTREE_VERSION_MAJOR 0
#define COROBTREE_VERSION_MINOR 2
#define COROBTREE_VERSION_PATCH 0
// MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons.
#define COROBTREE_VERSION \
  (COROBTREE_VERSION_MAJOR * 10000 + COROBTREE_VERSION_MINOR * 100 + COROBTREE_VERSION_PATCH)

namespace corobtree {

// "MAJOR.MINOR.PATCH" of the library this binary links.
COROBTREE_EXPORT std::string_view version() noexcept;

}  // namespace corobtree
