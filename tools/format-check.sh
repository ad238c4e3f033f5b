#!/usr/bin/env bash
# Checks C++ sources against .clang-format (issue 18 item 5).
#
#   tools/format-check.sh              every tracked *.cc / *.h: lists the files
#                                      clang-format would change, exit 1 if any
#   tools/format-check.sh FILE...      only these files
#   tools/format-check.sh --since REF  only files changed since git REF (e.g. origin/main)
#   tools/format-check.sh --fix [...]  rewrite the files in place instead
#   tools/format-check.sh --diff [...] print what would change
#
# Needs clang-format (Debian's clang-format, installed by tools/bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=check
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fix) mode=fix ;;
    --diff) mode=diff ;;
    --since) shift; mapfile -t -O "${#files[@]}" files < <(git diff --name-only --diff-filter=d "${1:?--since needs a git ref}" -- '*.cc' '*.h') ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "format-check.sh: unknown option $1 (--help)" >&2; exit 2 ;;
    *) files+=("$1") ;;
  esac
  shift
done
command -v clang-format >/dev/null || { echo "format-check.sh: clang-format not found (apt-get install clang-format)" >&2; exit 2; }
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(git ls-files '*.cc' '*.h')
bad=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  case "$mode" in
    fix) clang-format -i --style=file "$f" ;;
    diff) clang-format --style=file "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" - || bad=$((bad + 1)) ;;
    check) clang-format --style=file "$f" | cmp -s - "$f" || { echo "$f"; bad=$((bad + 1)); } ;;
  esac
done
if [ "$mode" != fix ]; then
  echo "format-check.sh: ${bad} of ${#files[@]} files differ from .clang-format" >&2
  [ "$bad" -eq 0 ]
fi
