#!/usr/bin/env bash
# Run every test of the workspace: unit tests, property tests, and the
# integration tests against a real redis-server and the real kernel in
# network namespaces; then the VM tier (scripts/test-vm.sh). Needs root
# (ip netns). Installs the host suite's dependencies; the VM tier's come
# from .ci/run.
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
# The operations tests (crates/neighsyncd/tests/ops_*.rs, deploy_promtool.rs)
# run the real tools and fail without them: supervisord with SONiC's
# dependent-startup plugin, promtool, systemd-analyze, dpkg, cargo-deb.
command -v supervisord >/dev/null || need+=(supervisor)
# The logging tests (sonic-daemon syslog_rsyslogd, neighsyncd ops_syslog,
# ops_supervisord) run a private rsyslogd.
command -v rsyslogd >/dev/null || need+=(rsyslog)
command -v promtool >/dev/null || need+=(prometheus)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v strip >/dev/null || need+=(binutils)
/usr/bin/python3 -c 'import toposort' 2>/dev/null || need+=(python3-toposort)
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# supervisord-dependent-startup: from PyPI as in SONiC's containers, for
# Debian's python3 (which has the supervisor module).
/usr/bin/python3 -c 'import supervisord_dependent_startup' 2>/dev/null ||
    /usr/bin/python3 -m pip install -q --no-deps --break-system-packages \
        supervisord-dependent-startup==1.4.0
cargo deb --version >/dev/null 2>&1 || cargo install -q cargo-deb --version 3.8.0 --locked
# Neighbor-table garbage collection thresholds are global on these machines:
# raise them so bulk tests are not cut short by the kernel.
sysctl -qw net.ipv4.neigh.default.gc_thresh1=1024 \
    net.ipv4.neigh.default.gc_thresh2=262144 net.ipv4.neigh.default.gc_thresh3=262144 \
    net.ipv6.neigh.default.gc_thresh1=1024 \
    net.ipv6.neigh.default.gc_thresh2=262144 net.ipv6.neigh.default.gc_thresh3=262144 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Doc comments name real items: a broken intra-doc link fails the suite.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --document-private-items --locked
cargo test --workspace --locked "$@"
# The VM tier: the same daemons on real Vlan/PortChannel/sub-interface/VRF
# links, in a QEMU guest with a Debian kernel (the host kernel lacks them).
# It fails, never skips, when its tools are missing (.ci/run installs them).
./scripts/test-vm.sh
