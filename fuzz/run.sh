#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (not part of CI).
# usage: fuzz/run.sh [SECONDS_PER_TARGET=60]
# needs: a nightly toolchain and `cargo install cargo-fuzz` (see RELIABILITY.md)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
cargo +nightly fuzz build
for target in $(cargo +nightly fuzz list); do
  echo "== $target ($seconds s)"
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -timeout=5 \
    -rss_limit_mb=2048 -max_len=4096 2>&1 | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY|artifact_prefix)" || true
done
