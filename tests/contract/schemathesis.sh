#!/usr/bin/env bash
# Fuzzes the running API from its own OpenAPI document with Schemathesis:
# every check (not_a_server_error, response_schema_conformance,
# status_code_conformance, content_type_conformance, negative_data_rejection,
# ...), authenticated with a fresh admin key. Zero failures allowed.
# positive_data_acceptance is left out: many inputs are valid JSON Schema but
# semantically impossible (weights whose shapes do not match the layers, an empty
# sequence), and those get a documented 422 naming the field, as they should.
#
# usage: tests/contract/schemathesis.sh PATH/TO/dlgrade [MAX_SECONDS]
# needs: schemathesis on PATH (pip install schemathesis==4.32.5)
set -euo pipefail
bin=${1:?path to the dlgrade binary}
max_time=${2:-120}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
"$bin" serve --addr "127.0.0.1:$port" --database-url "sqlite://$work/dlgrade.db" \
  > "$work/stdout" 2> "$work/stderr" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  sleep 0.1
done
key=$(grep -o 'dlg_[0-9a-f]*' "$work/stdout" | head -n 1)
[ -n "$key" ] || { echo "no bootstrap admin key printed"; cat "$work/stdout" "$work/stderr"; exit 1; }

schemathesis run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --max-time "$max_time" \
  --workers 2 \
  --request-timeout 15 \
  --seed 20261127
