#!/usr/bin/env bash
# buf breaking: the contract in protos/ against the contract before the change, so that
# changes stay additive. "Before" is a git commit:
#   BUF_AGAINST=<ref>   when set (on a branch, e.g. BUF_AGAINST=origin/main);
#   HEAD                when protos/ or buf.yaml have uncommitted changes;
#   HEAD~1              otherwise (what the last commit changed).
# Where that commit is not in the clone (a repository's first commit, a shallow clone, no
# git at all) the check is skipped with a line saying why; a BUF_AGAINST that is not there
# is an error. Runs the buf on PATH, or BUF.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=${BUF:-buf}

if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "buf breaking: skipped, not a git checkout"
  exit 0
fi
ref=${BUF_AGAINST:-}
if [ -z "$ref" ]; then
  if git diff --quiet HEAD -- protos buf.yaml 2>/dev/null; then ref=HEAD~1; else ref=HEAD; fi
fi
if ! commit=$(git rev-parse --verify --quiet "$ref^{commit}"); then
  if [ -n "${BUF_AGAINST:-}" ]; then
    echo "buf breaking: BUF_AGAINST=$ref is not a commit of this clone" >&2
    exit 1
  fi
  if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
    why="a shallow clone: fetch more history (git fetch --deepen=1) to check"
  else
    why="the repository's first commit"
  fi
  echo "buf breaking: skipped, no $ref ($why)"
  exit 0
fi
if ! git cat-file -e "$commit:protos" 2>/dev/null; then
  echo "buf breaking: skipped, $ref has no protos/ yet"
  exit 0
fi

against=$(mktemp -d)
trap 'rm -rf "$against"' EXIT
git archive "$commit" protos | tar -x -C "$against"
# the module layout of today when that commit had no buf.yaml
if git cat-file -e "$commit:buf.yaml" 2>/dev/null; then
  git show "$commit:buf.yaml" >"$against/buf.yaml"
else
  cp buf.yaml "$against/buf.yaml"
fi
"$buf" breaking --against "$against"
echo "buf breaking: no breaking change against $ref ($(git rev-parse --short "$commit"))"
