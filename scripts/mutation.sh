#!/usr/bin/env bash
# `make mutation`: mutmut on the layer's domain and data-access modules and on two function
# handlers, against the fast tier.
# mutmut names mutants by file path (stripping only `src/`), so it runs in a staged copy of the
# worktree (.mutation/) with layers/shared/apikeys moved to src/apikeys; the code imports the
# same `apikeys.*` names there. A module named fn_<function> is functions/<function>/app.py, staged
# as src/fn_<function>.py: tests/helpers/support.py's load_function imports it from there under
# that same name (the trampolines compare it with the mutant's). One worker by default (the
# machine is shared); WORKERS=2 on a free machine. MODULES="keys auth" or "fn_authorizer" to narrow.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stage=${STAGE:-.mutation}  # STAGE=/elsewhere: a second run beside this one (WORKERS=1 each)
results=${RESULTS:-$root/.mutation-results.txt}
modules=${MODULES:-keys auth plans logic store scanning scopes fn_authorizer fn_mcp}
workers=${WORKERS:-1}
mutmut=${MUTMUT:-$root/.venv/bin/mutmut}  # MUTMUT=…: a worktree without its own .venv
rm -rf "$stage"
mkdir -p "$stage/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$stage"
cp -r layers/shared/apikeys "$stage/src/apikeys"
# The layer's source stays at layers/shared/apikeys for the tests that read it (import graph,
# metric names), but pytest must import the mutated copy: layers/shared leaves its pythonpath.
sed -i 's|^pythonpath = \["layers/shared", |pythonpath = [|' "$stage/pyproject.toml"
grep -q '^pythonpath = \["infra", "."\]$' "$stage/pyproject.toml" || { echo "pyproject.toml: pythonpath changed, see $0" >&2; exit 1; }
# mutmut bounds each run by wall clock itself; pytest-timeout's 300 s per test would fail the
# stats or clean run of a process that is paused (SIGSTOP) for a while, and end the whole run.
sed -i 's|^timeout = 300$|timeout = 0|' "$stage/pyproject.toml"
grep -q '^timeout = 0$' "$stage/pyproject.toml" || { echo "pyproject.toml: pytest timeout changed, see $0" >&2; exit 1; }
# mutmut runs the tests in .mutation/mutants/, holding only src/, tests/, pyproject.toml and
# also_copy: every other top-level entry of the repository must be in also_copy.
"$(dirname "$mutmut")/python" - "$stage" <<'EOF'
import pathlib, sys, tomllib
stage = pathlib.Path(sys.argv[1])
copied = set(tomllib.loads((stage / "pyproject.toml").read_text())["tool"]["mutmut"]["also_copy"])
missing = sorted({p.name for p in stage.iterdir()} - copied - {"src", "tests", "pyproject.toml"})
sys.exit(f"pyproject.toml: [tool.mutmut] also_copy lacks {missing}" if missing else 0)
EOF
# mutmut's name for a module: apikeys.<module>, or fn_<function> for a staged handler.
name() { case $1 in fn_*) echo "$1" ;; *) echo "apikeys.$1" ;; esac; }
for module in $modules; do
  case $module in fn_*) cp "functions/${module#fn_}/app.py" "$stage/src/$module.py" ;; esac
done
find "$stage/src" -name __pycache__ -prune -exec rm -rf {} +
cd "$stage"
for module in $modules; do
  echo "== mutmut: $(name "$module")"
  start=$(date +%s)
  "$mutmut" run --max-children "$workers" "$(name "$module").*" || true
  echo "== $(name "$module") took $(( $(date +%s) - start )) s"
done
"$mutmut" results --all true > "$results" || true
# Score per module: killed / (killed + survived + timeout + no tests). A timeout is not counted
# as a kill: check it by hand (docs/testing.md says how) before calling it one.
for module in $modules; do
  grep -F "$(name "$module").x" "$results" | awk -v m="$module" -F': ' '
    { n[$2]++ } END {
      total = n["killed"] + n["survived"] + n["timeout"] + n["no tests"]
      printf "%-13s killed %d, survived %d, timeout %d, no tests %d: %.1f %%\n",
        m, n["killed"], n["survived"], n["timeout"], n["no tests"], total ? 100 * n["killed"] / total : 0 }'
done
echo "results: $results (survivors: \`cd $stage && $mutmut show <name>\`)"
