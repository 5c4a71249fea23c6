#!/usr/bin/env bash
# Crash safety: SIGKILLs the server in the middle of a load of concurrent
# idempotent submissions, restarts it on the same SQLite file, then checks
# that every acknowledged submission is present and intact, that retrying
# every key replays the acknowledged ones and stores each lost one once, and
# that the listing holds exactly one submission per key
# (tests/contract/crash_safety.py does the work; standard-library Python).
#
# usage: tests/contract/crash_safety.sh PATH/TO/dlgrade [TOTAL_KEYS] [KILL_AFTER_ACKS]
# Prints 'N passed, M failed'; exits non-zero on any failure.
set -euo pipefail
bin=$(realpath "${1:?path to the dlgrade binary}")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/crash_safety.py" "$bin" "$work" "${2:-1500}" "${3:-300}"
