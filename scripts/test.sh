#!/usr/bin/env bash
# Run every test of the workspace: unit tests, property tests, and the
# integration tests against a real redis-server and the real kernel in
# network namespaces. Needs root (ip netns). Installs its own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: the integration tests create network namespaces; run as root" >&2
    exit 1
fi

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Neighbor-table garbage collection thresholds are global on these machines:
# raise them so bulk tests are not cut short by the kernel.
sysctl -qw net.ipv4.neigh.default.gc_thresh1=1024 \
    net.ipv4.neigh.default.gc_thresh2=262144 net.ipv4.neigh.default.gc_thresh3=262144 \
    net.ipv6.neigh.default.gc_thresh1=1024 \
    net.ipv6.neigh.default.gc_thresh2=262144 net.ipv6.neigh.default.gc_thresh3=262144 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
