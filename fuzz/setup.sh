#!/usr/bin/env bash
# Installs what fuzz/run.sh needs: cargo-afl, and the AFL++ it builds for itself.
#
# `cargo install cargo-afl` builds AFL++ from the source the crate ships (no download beyond
# crates.io; it needs `make` and a C compiler) into ~/.local/share/afl.rs/, the only place
# `cargo afl` looks for afl-fuzz and its runtime. The distribution's AFL++ package is not used.
set -euo pipefail
version=0.18.2
if ! cargo afl --version >/dev/null 2>&1; then
    for tool in make cc; do
        command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y build-essential)" >&2; exit 1; }
    done
    cargo install cargo-afl --locked --version "$version"
fi
if ! cargo afl --version 2>/dev/null | grep -q 'AFL++ version'; then
    cargo afl config --build
fi
cargo afl --version
