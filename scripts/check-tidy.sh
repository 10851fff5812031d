#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the given files, or over every .cc file of
# the library and tools, with the compile commands of a g++ build in build-tidy/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${COROBTREE_TIDY_BUILD:-build-tidy}
if [ ! -f "$BUILD/compile_commands.json" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCOROBTREE_BUILD_PERF=OFF >/dev/null
fi
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files -- 'io/*.cc' 'engine/*.cc' 'tools/*.cc')
fi
clang-tidy -p "$BUILD" --quiet "${files[@]}"
