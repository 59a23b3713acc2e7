#!/usr/bin/env bash
# Runs every test against real things (3-member etcd, headless Chromium, nginx), installing the
# Debian packages they need first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
cargo test --locked --all-targets -- --test-threads="${TEST_THREADS:-2}"
