#!/usr/bin/env bash
# The VM test tier: neighsyncd/portsyncd on SONiC's real link types (Vlan on
# a VLAN-aware Bridge, bond PortChannel, sub-interface, VRF, EVPN) on a real
# kernel. The build machines' kernel has no 8021q/bonding/vrf/dummy, so this
# boots a stock Debian kernel (linux-image-amd64) under QEMU with virtme-ng;
# the guest sees the host's file system, so the test binaries built here
# (crates/*/tests/vm_*.rs, #[ignore]d on the host) run in it unchanged, each
# test with its own redis-server and network namespaces.
#
#   sudo ./scripts/test-vm.sh [TEST-FILTER...]
#
# Needs (installed by .ci/run): qemu-system-x86, linux-image-amd64,
# busybox-static, redis-server, iproute2, iputils-ping, and virtme-ng in a
# venv at $VNG_VENV (default /opt/virtme-ng) or `vng` on PATH. A missing tool,
# a guest that does not boot or hangs (timeout $VM_TIMEOUT s), or a failing
# test fails the tier (exit 1) with the console tail: it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_MEMORY=${VM_MEMORY:-2G}
VM_CPUS=${VM_CPUS:-2}
VNG_VENV=${VNG_VENV:-/opt/virtme-ng}
# Guest-side test threads; each test runs its own daemon and redis-server.
VM_TEST_THREADS=${VM_TEST_THREADS:-2}

fail() {
    echo "scripts/test-vm.sh: FAIL: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "run as root (the guest runs as root and builds network namespaces)"

# ----- tools -----
if [ -x "$VNG_VENV/bin/vng" ]; then
    # vng runs virtme-run from the same venv through PATH.
    export PATH="$VNG_VENV/bin:$PATH"
fi
missing=()
for tool in vng qemu-system-x86_64 busybox redis-server ip bridge ping python3 timeout; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] || fail "missing tools: ${missing[*]} (install them as .ci/run does:
  apt-get install qemu-system-x86 linux-image-amd64 busybox-static redis-server iproute2 iputils-ping
  python3 -m venv $VNG_VENV && $VNG_VENV/bin/pip install virtme-ng)"

# ----- kernel: the one linux-image-amd64 points at, else the newest in /boot -----
kver=""
if dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null); then
    kver=$(printf '%s\n' "$dep" | tr ',|' '\n\n' | sed -n 's/^ *linux-image-\([^ ]*\).*/\1/p' |
        while read -r v; do [ -f "/boot/vmlinuz-$v" ] && echo "$v"; done | sort -V | tail -n1)
fi
if [ -z "$kver" ]; then
    kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' 2>/dev/null |
        sed 's/^vmlinuz-//' | sort -V | tail -n1)
fi
[ -n "$kver" ] || fail "no kernel in /boot (apt-get install linux-image-amd64)"
KERNEL=/boot/vmlinuz-$kver
[ -r "$KERNEL" ] || fail "$KERNEL is not readable"
[ -f "/lib/modules/$kver/modules.dep" ] || fail "no modules for $kver in /lib/modules/$kver"

# ----- build the test binaries (and the daemons they start) on the host -----
shared=$(mktemp -d /tmp/test-vm.XXXXXX)
echo "scripts/test-vm.sh: building the VM test binaries"
cargo test --locked --no-run -p neighsyncd -p portsyncd --test 'vm_*' \
    --message-format=json-render-diagnostics >"$shared/build.json"
# Test binaries (vm_*) and the daemon binaries they start, by path.
mapfile -t bins < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["profile"]["test"] and m["target"]["name"].startswith("vm_"):
        print(m["executable"])
' "$shared/build.json")
mapfile -t daemons < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and "bin" in m["target"]["kind"] and not m["profile"]["test"]:
        print(m["executable"])
' "$shared/build.json")
[ ${#bins[@]} -gt 0 ] || fail "cargo built no vm_* test binary"
[ ${#daemons[@]} -gt 0 ] || fail "cargo reported no daemon binary"
# Snapshot them: other builds in this tree may replace target/ files while
# the guest runs (a half-written binary crashes). The guest bind-mounts each
# copy over its original path, where the test binaries look for the daemons.
mkdir -p "$shared/bin"
snap=()
for f in "${bins[@]}" "${daemons[@]}"; do
    copy="$shared/bin/$(basename "$f")"
    cp "$f" "$copy"
    snap+=("$copy" "$f")
done

# ----- the guest script: modules, sysctls, each test binary with --ignored -----
filter=""
for a in "$@"; do filter+=" $(printf '%q' "$a")"; done
{
    echo '#!/bin/bash'
    echo 'set -u'
    echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    echo 'export RUST_BACKTRACE=1 TMPDIR=/tmp'
    echo "cd $(printf '%q' "$ROOT")"
    echo "log=$(printf '%q' "$shared/tests.log")"
    cat <<'EOF'
exec >>"$log" 2>&1
echo "guest: kernel $(uname -r), $(nproc) cpus"
rc=0
for m in 8021q bonding vrf dummy bridge veth; do
    modprobe "$m" || { echo "guest: modprobe $m failed"; rc=1; }
done
# As scripts/test.sh: neighbor GC thresholds are global; keep them out of the way.
sysctl -qw net.ipv4.neigh.default.gc_thresh3=262144 net.ipv6.neigh.default.gc_thresh3=262144 || true
redis-server --version >/dev/null || { echo "guest: redis-server does not run"; rc=1; }
EOF
    for ((i = 0; i < ${#snap[@]}; i += 2)); do
        echo "mount --bind $(printf '%q' "${snap[i]}") $(printf '%q' "${snap[i + 1]}") || { echo 'guest: bind mount failed'; rc=1; }"
    done
    echo 'if [ "$rc" -eq 0 ]; then'
    for b in "${bins[@]}"; do
        q=$(printf '%q' "$b")
        echo "    echo \"guest: running $(basename "$b")\"; start=\$(date +%s)"
        echo "    $q --ignored --test-threads=$VM_TEST_THREADS$filter || rc=1"
        echo "    echo \"guest: $(basename "$b") done in \$((\$(date +%s) - start)) s\""
    done
    echo 'fi'
    echo "echo \"\$rc\" > $(printf '%q' "$shared/status")"
    echo 'exit "$rc"'
} >"$shared/guest.sh"
chmod +x "$shared/guest.sh"
: >"$shared/tests.log"

# ----- boot once, run everything, propagate the status -----
kvm=(--disable-kvm)
[ "${VM_KVM:-0}" = 1 ] && kvm=()
echo "scripts/test-vm.sh: booting $KERNEL (TCG, $VM_CPUS cpus, $VM_MEMORY, timeout ${VM_TIMEOUT}s)"
t0=$(date +%s)
(
    set +e
    timeout --kill-after=15 "$VM_TIMEOUT" \
        vng --run "$KERNEL" --user root "${kvm[@]}" --memory "$VM_MEMORY" --cpus "$VM_CPUS" \
        --verbose --rwdir "$shared" --exec "$shared/guest.sh" </dev/null >"$shared/console.log" 2>&1
    echo $? >"$shared/vng.rc"
) &
vm=$!
tail -n +1 -F --pid="$vm" "$shared/tests.log" 2>/dev/null || true
wait "$vm" || true
elapsed=$(($(date +%s) - t0))
rm -rf "$shared/bin"

vng_rc=$(cat "$shared/vng.rc" 2>/dev/null || echo "?")
status=$(cat "$shared/status" 2>/dev/null || echo "")
console_tail() {
    echo "----- guest console (last 60 lines of $shared/console.log) -----" >&2
    tail -n 60 "$shared/console.log" >&2 || true
}
if [ "$vng_rc" = 124 ] || [ "$vng_rc" = 137 ]; then
    console_tail
    fail "the guest did not finish within ${VM_TIMEOUT}s (vng exit $vng_rc)"
fi
if [ -z "$status" ]; then
    console_tail
    fail "the guest wrote no status (did not boot, or the test script died; vng exit $vng_rc)"
fi
if [ "$status" != 0 ]; then
    console_tail
    fail "VM tier: tests failed in the guest (status $status) after ${elapsed}s; logs in $shared"
fi
echo "scripts/test-vm.sh: VM tier passed in ${elapsed}s (kernel $kver)"
rm -rf "$shared"
