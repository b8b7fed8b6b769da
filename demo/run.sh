#!/usr/bin/env bash
# The main job on real input: a private Redis laid out like SONiC's, a DUT
# network namespace whose ports are veth links named like SONiC ports
# (Ethernet0, Ethernet4), each cabled to a peer namespace; real ARP/ND
# traffic; neighsyncd and portsyncd running in the DUT; then APPL_DB and
# STATE_DB printed as orchagent and the CLI see them. Cleans up after itself.
#
# Run as root on Debian: sudo ./demo/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "$(id -u)" -ne 0 ]; then
    echo "demo/run.sh: needs root (network namespaces)" >&2
    exit 1
fi
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== building (release)"
cargo build --release --locked -q -p neighsyncd -p portsyncd -p swss
BIN=$ROOT/target/release

WORK=$(mktemp -d /tmp/sonic-syncd-demo.XXXXXX)
DUT=demo-dut-$$
PEERS=(demo-peer0-$$ demo-peer1-$$)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "$DUT" "${PEERS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== private Redis on $WORK/redis.sock (notify-keyspace-events AKE, as SONiC)"
redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
    --notify-keyspace-events AKE --save '' --appendonly no --databases 16 \
    --dir "$WORK" --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 50); do
    redis-cli -s "$WORK/redis.sock" ping >/dev/null 2>&1 && break
    sleep 0.1
done
cat >"$WORK/database_config.json" <<EOF
{
  "INSTANCES": { "redis": { "hostname": "127.0.0.1", "port": 6379,
                            "unix_socket_path": "$WORK/redis.sock" } },
  "DATABASES": {
    "APPL_DB":   { "id": 0, "separator": ":", "instance": "redis" },
    "CONFIG_DB": { "id": 4, "separator": "|", "instance": "redis" },
    "STATE_DB":  { "id": 6, "separator": "|", "instance": "redis" }
  },
  "VERSION": "1.0"
}
EOF
DBCFG=(--db-config "$WORK/database_config.json")
cli() { "$BIN/swss-cli" "${DBCFG[@]}" "$@"; }
rcli() { redis-cli -s "$WORK/redis.sock" "$@"; }

echo "== CONFIG_DB PORT|Ethernet0, PORT|Ethernet4 (as config_db.json would have them)"
for i in 0 1; do
    rcli -n 4 hset "PORT|Ethernet$((i * 4))" alias "etp$((i + 1))" \
        lanes "$((i * 4)),$((i * 4 + 1)),$((i * 4 + 2)),$((i * 4 + 3))" \
        speed 100000 mtu 9100 admin_status up index "$i" >/dev/null
done

echo "== namespaces $DUT and ${PEERS[*]}; starting portsyncd in $DUT"
for ns in "$DUT" "${PEERS[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip netns exec "$DUT" "$BIN/portsyncd" "${DBCFG[@]}" --log-level INFO >"$WORK/portsyncd.log" 2>&1 &
PIDS+=($!)
sleep 1
echo
echo "== APPL_DB PORT_TABLE as orchagent pops it (portsyncd copied CONFIG_DB PORT)"
cli pop APPL_DB PORT_TABLE

echo
echo "== host interfaces appear (as syncd creates them): veth Ethernet0, Ethernet4 <-> peers"
for i in 0 1; do
    port=Ethernet$((i * 4))
    peer=${PEERS[$i]}
    ip link add "$port" netns "$DUT" type veth peer name eth0 netns "$peer"
    ip -n "$DUT" addr add "10.0.$i.1/24" dev "$port"
    ip -n "$DUT" addr add "fc00:$i::1/64" dev "$port" nodad
    ip -n "$peer" addr add "10.0.$i.2/24" dev eth0
    ip -n "$peer" addr add "fc00:$i::2/64" dev eth0 nodad
    ip -n "$peer" link set eth0 up
    ip -n "$DUT" link set "$port" up
done
sleep 1
echo "== APPL_DB PORT_TABLE: PortInitDone once every port's interface is seen"
cli pop APPL_DB PORT_TABLE
echo
echo "== STATE_DB PORT_TABLE (portsyncd, from RTM_NEWLINK)"
cli dump STATE_DB PORT_TABLE

echo
echo "== starting neighsyncd in $DUT"
ip netns exec "$DUT" "$BIN/neighsyncd" "${DBCFG[@]}" --log-level INFO >"$WORK/neighsyncd.log" 2>&1 &
PIDS+=($!)
sleep 1

echo
echo "== real ARP / ND: the DUT pings both peers (IPv4 and IPv6)"
for i in 0 1; do
    ip netns exec "$DUT" ping -c1 -W2 "10.0.$i.2" >/dev/null
    ip netns exec "$DUT" ping -6 -c1 -W2 "fc00:$i::2" >/dev/null
done
ip -n "$DUT" neigh show | sed 's/^/   kernel: /'
sleep 0.5
echo
echo "== APPL_DB NEIGH_TABLE as orchagent pops it"
cli pop APPL_DB NEIGH_TABLE

echo
echo "== a neighbor goes away (ip neigh del 10.0.1.2 dev Ethernet4)"
ip -n "$DUT" neigh del 10.0.1.2 dev Ethernet4
sleep 0.5
cli pop APPL_DB NEIGH_TABLE

echo
echo "== Ethernet4's peer goes down: STATE_DB follows the carrier"
ip -n "${PEERS[1]}" link set eth0 down
sleep 0.5
cli dump STATE_DB PORT_TABLE

echo
echo "== consumed APPL_DB now holds (redis-cli -n 0 keys 'NEIGH_TABLE:*'):"
rcli -n 0 --scan --pattern 'NEIGH_TABLE:*' | sort | sed 's/^/   /'

echo
echo "== stopping the daemons (SIGTERM)"
for p in "${PIDS[@]:1}"; do kill -TERM "$p"; done
for p in "${PIDS[@]:1}"; do wait "$p" && echo "   pid $p exited 0"; done
PIDS=("${PIDS[0]}")
