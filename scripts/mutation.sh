#!/usr/bin/env bash
# `make mutation`: mutmut on the layer's domain and data-access modules against the fast tier.
# mutmut names mutants by file path (stripping only `src/`), so it runs in a staged copy of the
# worktree (.mutation/) with layers/shared/apikeys moved to src/apikeys; the code imports the
# same `apikeys.*` names there. One worker by default (the machine is shared); WORKERS=2 on a free
# machine. MODULES="keys auth" to narrow.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stage=.mutation
modules=${MODULES:-keys auth plans logic store}
workers=${WORKERS:-1}
rm -rf "$stage"
mkdir -p "$stage/src"
git ls-files -z --cached --others --exclude-standard | grep -zv '^layers/shared/apikeys/' | xargs -0 cp --parents -t "$stage"
cp -r layers/shared/apikeys "$stage/src/apikeys"
find "$stage/src" -name __pycache__ -prune -exec rm -rf {} +
cd "$stage"
for module in $modules; do
  echo "== mutmut: apikeys.$module"
  start=$(date +%s)
  "$root/.venv/bin/mutmut" run --max-children "$workers" "apikeys.$module.*" || true
  echo "== apikeys.$module took $(( $(date +%s) - start )) s"
done
"$root/.venv/bin/mutmut" results --all true > "$root/.mutation-results.txt" || true
echo "results: .mutation-results.txt (survivors: \`cd $stage && $root/.venv/bin/mutmut show <name>\`)"
