// Library version, for diagnostics and the CLI.
#pragma once

#include <string_view>

namespace corobtree {

// "MAJOR.MINOR.PATCH" of the library this binary links.
std::string_view version() noexcept;

}  // namespace corobtree
