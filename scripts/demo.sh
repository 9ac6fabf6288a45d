#!/usr/bin/env bash
# The demo: a 3-node LLT cluster in network namespaces; prints lltstat -nvv
# from each node, cuts a link, prints again, tears down. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --workspace --bins
HA_BIN_DIR="$PWD/target/release" exec target/release/demo
