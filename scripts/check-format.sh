#!/usr/bin/env bash
# Checks the C++ formatting against .clang-format.
#   scripts/check-format.sh               every tracked .h/.cc file (what CI runs)
#   scripts/check-format.sh --base REV    only the files changed since REV
#   scripts/check-format.sh --fix [...]   rewrite the files instead of checking
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=""
FIX=0
while [ $# -gt 0 ]; do
  case "$1" in
    --base) BASE=$2; shift ;;
    --fix) FIX=1 ;;
    *) echo "usage: $0 [--base REV] [--fix]" >&2; exit 2 ;;
  esac
  shift
done
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if [ -n "$BASE" ]; then
  mapfile -t files < <(git diff --name-only --diff-filter=ACMR "$BASE" -- '*.h' '*.cc')
else
  mapfile -t files < <(git ls-files -- '*.h' '*.cc')
fi
[ ${#files[@]} -gt 0 ] || { echo "format: no files to check"; exit 0; }
if [ "$FIX" -eq 1 ]; then
  "$CLANG_FORMAT" -i "${files[@]}"
  echo "format: rewrote ${#files[@]} files"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "format: $f differs from .clang-format (scripts/check-format.sh --fix)"
    bad=$((bad + 1))
  fi
done
echo "format: ${#files[@]} files checked, $bad to fix"
[ "$bad" -eq 0 ]
