#!/usr/bin/env bash
# Generates a Python client from the committed OpenAPI document with
# openapi-python-client and runs the whole grading flow through it
# (tests/contract/client_flow.py): keys, rubric, preview, idempotent
# submissions, reads, listing, gradebook (JSON and CSV), statistics, regrade.
#
# Fails when the generator warns about anything (a dropped endpoint, schema or
# response), when an operation of the spec has no generated module, or when a
# response offers several content types (the generator silently keeps only
# the first one, so the others are unreachable from the client).
#
# usage: tests/contract/client_flow.sh PATH/TO/dlgrade
# needs: python3 (with venv) and access to PyPI; the venv is made in a temp dir
# (set CLIENT_FLOW_VENV=DIR to reuse one between runs; CLIENT_FLOW_SPEC=FILE
# tries a candidate document instead of openapi/openapi.json).
set -euo pipefail
bin=$(realpath "${1:?path to the dlgrade binary}")
here=$(cd "$(dirname "$0")" && pwd)
spec=$(realpath "${CLIENT_FLOW_SPEC:-$here/../../openapi/openapi.json}")
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

venv=${CLIENT_FLOW_VENV:-$work/venv}
if [ ! -x "$venv/bin/openapi-python-client" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check openapi-python-client==0.29.1
fi

# No post-generation hooks: formatting the client (ruff) is not what is tested,
# and a missing formatter would itself be reported as a warning.
printf 'post_hooks: []\n' > "$work/generator.yaml"
echo "== generating the client from $spec"
set +e
COLUMNS=200 "$venv/bin/openapi-python-client" generate --path "$spec" --meta setup \
  --config "$work/generator.yaml" --output-path "$work/client" --fail-on-warning \
  > "$work/generate.log" 2>&1
status=$?
set -e
cat "$work/generate.log"
if [ "$status" -ne 0 ] || grep -Eqi 'warning|unable to|will not be generated|omitted|removal of' "$work/generate.log"; then
  echo "FAIL the generator warned (exit $status): the spec must change, see above"
  echo "0 passed, 1 failed"
  exit 1
fi

echo "== every operation generated, one content type per response (counted with the flow's checks)"
"$venv/bin/python" - "$spec" "$work/client/dlgrade_client/api" > "$work/coverage.txt" <<'EOF'
import json, pathlib, re, sys
spec = json.load(open(sys.argv[1]))
api = pathlib.Path(sys.argv[2])
modules = {p.stem for p in api.glob("*/*.py") if p.stem != "__init__"}
problems = []
count = 0
for path, item in spec["paths"].items():
    for method, op in item.items():
        count += 1
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", op["operationId"]).lower()
        if name not in modules:
            problems.append(f"{method.upper()} {path}: no generated module {name}.py")
        for status, resp in op["responses"].items():
            types = list(resp.get("content", {}))
            if len(types) > 1:
                problems.append(f"{method.upper()} {path} {status}: content types {types}: "
                                f"the generated client only reads {types[0]}")
generated = "ok  " if count == len(modules) else "FAIL"
print(f"{generated} {count} operations in the spec, {len(modules)} generated")
for p in problems:
    print("FAIL", p)
EOF
cat "$work/coverage.txt"
# (uninstall first: a reused venv would otherwise keep an older client of the same version)
"$venv/bin/pip" uninstall --quiet --yes dlgrade-client > /dev/null 2>&1 || true
"$venv/bin/pip" install --quiet --disable-pip-version-check "$work/client"

port=$((20000 + RANDOM % 20000))
"$bin" serve --addr "127.0.0.1:$port" --database-url "sqlite://$work/dlgrade.db" \
  > "$work/stdout" 2> "$work/stderr" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  sleep 0.1
done
key=$(grep -o 'dlg_[0-9a-f]*' "$work/stdout" | head -n 1)
[ -n "$key" ] || { echo "no bootstrap admin key printed"; cat "$work/stdout" "$work/stderr"; exit 1; }

echo "== the flow"
DLGRADE_URL="http://127.0.0.1:$port" DLGRADE_ADMIN_KEY="$key" CLIENT_FLOW_COVERAGE="$work/coverage.txt" \
  "$venv/bin/python" "$here/client_flow.py"
