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
# Score per module: killed / (killed + survived + timeout + no tests). A timeout is not counted
# as a kill: check it by hand (docs/testing.md says how) before calling it one.
for module in $modules; do
  grep -F "apikeys.$module.x_" "$root/.mutation-results.txt" | awk -v m="$module" -F': ' '
    { n[$2]++ } END {
      total = n["killed"] + n["survived"] + n["timeout"] + n["no tests"]
      printf "%-6s killed %d, survived %d, timeout %d, no tests %d: %.1f %%\n",
        m, n["killed"], n["survived"], n["timeout"], n["no tests"], total ? 100 * n["killed"] / total : 0 }'
done
echo "results: .mutation-results.txt (survivors: \`cd $stage && $root/.venv/bin/mutmut show <name>\`)"
