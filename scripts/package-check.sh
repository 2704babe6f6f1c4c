#!/usr/bin/env bash
# Packages every publishable crate as crates.io would receive it, in
# dependency order, and verifies each one: cargo unpacks the tarball and
# builds it alone, with its workspace dependencies taken from the tarballs
# just made (a temporary local registry, target/package-check/package/tmp-registry), not
# from the source tree. So a file missing from a package fails here, e.g.
# ferrograd-ptx's build.rs, which reads cuda/op_codes.h from its own tarball.
# Crates.io itself is only asked for the third-party dependencies.
#
# One crate at a time does not work for a dependant before its workspace
# dependencies are on crates.io: `cargo package -p ferrograd-autograd` fails
# with "no matching package named `ferrograd-engine` found"; only
# `--no-verify` packages it alone, without building it. Publishing goes in
# the order cargo packages them: ptx first (the engine's `cuda` feature
# depends on it, and crates.io needs optional dependencies published too),
# then engine, autograd, datasets, optim, ferrograd.
#
# Needs cargo 1.90 or newer (several -p at once with that local registry;
# checked with 1.95). Passes its arguments on to cargo package, e.g.
# --allow-dirty for uncommitted changes, or --no-verify for the listing and
# the sizes alone.
#
# Then it checks what went in (no file over 1 MiB, nothing from bench/, no
# race logs, no test fixtures) and prints each package's size.
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(ferrograd-engine ferrograd-ptx ferrograd-autograd ferrograd-optim ferrograd-datasets ferrograd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

packages=()
for crate in "${crates[@]}"; do
    packages+=(-p "$crate")
done
# A target directory of its own, emptied first: cargo treats a registry
# crate of a given version as immutable, so with the workspace's target
# directory a second run would link the verified crates against objects
# compiled from the first run's tarballs of the same version (and it would
# reuse their unpacked copies under $CARGO_HOME/registry/src, which go too;
# these names come only from the local registry, not from crates.io).
target_dir=target/package-check
rm -rf "$target_dir"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
for crate in "${crates[@]}"; do
    rm -rf "$cargo_home"/registry/src/*/"$crate-$version"
done
export CARGO_TARGET_DIR=$target_dir
cargo package "${packages[@]}" "$@"

status=0
printf '\n%-20s %6s %12s %12s\n' crate files unpacked compressed
for crate in "${crates[@]}"; do
    tarball="$target_dir/package/$crate-$version.crate"
    listing=$(tar -tvzf "$tarball")
    files=$(printf '%s\n' "$listing" | grep -vc '/$')
    unpacked=$(printf '%s\n' "$listing" | awk '{ s += $3 } END { print s }')
    compressed=$(wc -c < "$tarball")
    awk -v c="$crate" -v f="$files" -v u="$unpacked" -v z="$compressed" \
        'BEGIN { printf "%-20s %6d %9.1f KiB %9.1f KiB\n", c, f, u / 1024, z / 1024 }'
    big=$(printf '%s\n' "$listing" | awk '$3 > 1048576 { print $6 }')
    unwanted=$(printf '%s\n' "$listing" | awk '{ print $6 }' | grep -E '\.jsonl$|/fixtures/|/bench/|/emu/' || true)
    for path in $big; do
        echo "error: $path is over 1 MiB; leave it out of $crate's package (include in its Cargo.toml)"
        status=1
    done
    for path in $unwanted; do
        echo "error: $path (race logs, fixtures, benchmarks, the emulator) does not belong in $crate's package"
        status=1
    done
    for licence in LICENSE-MIT LICENSE-APACHE README.md; do
        if ! printf '%s\n' "$listing" | awk '{ print $6 }' | grep -qx "$crate-$version/$licence"; then
            echo "error: $crate's package has no $licence"
            status=1
        fi
    done
done
exit "$status"
