// COROBTREE_EXPORT marks the symbols of the public API. The library is built
// with hidden visibility (-fvisibility=hidden), so a shared libcorobtree
// exports exactly what carries this mark; in a static build it changes nothing.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define COROBTREE_EXPORT __attribute__((visibility("default")))
#else
#define COROBTREE_EXPORT
#endif
