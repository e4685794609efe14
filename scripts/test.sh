#!/usr/bin/env bash
# The project's test command (README: "Test"): host unit/integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets
