#!/usr/bin/env bash
# DHCP throughput: full DORA exchanges per second, kiln against Kea (kea-dhcp4, memfile persist=true),
# both measured here the same way: server pinned to CPU 0, perfdhcp (kea-admin) pinned to CPU 1,
# across a veth pair between two network namespaces. perfdhcp then acts as a relay (giaddr = its
# address), so the server must answer relays. For each server the rate ladder is walked upwards and
# the best rate with < 1% drops is kept. Needs root. Bounded: about 2 × steps × PERIOD seconds.
#   bash scripts/bench/dhcp.sh            (PERIOD=5 RATES="5000 10000 ...")
set -euo pipefail
cd "$(dirname "$0")/../.."
PERIOD=${PERIOD:-5}
RATES=${RATES:-"5000 10000 12500 15000 16250 17500 18750 20000 22500 25000 30000"}
CLIENTS=${CLIENTS:-50000}
ns=kb$$
tmp=$(mktemp -d)
spid=
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  for p in $(ip netns pids "${ns}s" 2>/dev/null) $(ip netns pids "${ns}c" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "${ns}s" 2>/dev/null || true
  ip netns del "${ns}c" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "${ns}s"
ip netns add "${ns}c"
ip link add kbs0 netns "${ns}s" type veth peer name kbc0 netns "${ns}c"
ip -n "${ns}s" addr add 10.66.0.1/16 dev kbs0
ip -n "${ns}c" addr add 10.66.0.2/16 dev kbc0
for n in "${ns}s" "${ns}c"; do ip -n "$n" link set lo up; done
ip -n "${ns}s" link set kbs0 up
ip -n "${ns}c" link set kbc0 up

start_kiln() {
  rm -rf "$tmp/kiln"
  ip netns exec "${ns}s" taskset -c 0 node --import tsx scripts/bench/dhcp-server.ts "$tmp/kiln" \
    10.66.0.0/16 10.66.1.0 10.66.255.254 >"$tmp/kiln.out" 2>"$tmp/kiln.err" &
  spid=$!
  for _ in $(seq 100); do grep -q ready "$tmp/kiln.out" 2>/dev/null && return; sleep 0.1; done
  echo "kiln did not start: $(cat "$tmp/kiln.err")" >&2; exit 1
}
start_kea() {
  rm -rf "$tmp/kea"; mkdir -p "$tmp/kea"
  cat >"$tmp/kea/kea.json" <<JSON
{ "Dhcp4": {
  "interfaces-config": { "interfaces": ["kbs0"] },
  "lease-database": { "type": "memfile", "persist": true, "name": "$tmp/kea/leases.csv", "lfc-interval": 0 },
  "valid-lifetime": 3600,
  "subnet4": [ { "id": 1, "subnet": "10.66.0.0/16", "pools": [ { "pool": "10.66.1.0 - 10.66.255.254" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "$tmp/kea/kea.log" } ] } ]
} }
JSON
  KEA_LOCKFILE_DIR="$tmp/kea" KEA_PIDFILE_DIR="$tmp/kea" \
    ip netns exec "${ns}s" taskset -c 0 kea-dhcp4 -c "$tmp/kea/kea.json" >"$tmp/kea.out" 2>&1 &
  spid=$!
  sleep 1
  kill -0 "$spid" || { echo "kea did not start: $(cat "$tmp/kea.out")" >&2; exit 1; }
}
stop_server() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; spid=; }

# One perfdhcp run; prints "<exchanges/s> <drop %>".
run() {
  local out
  out=$(ip netns exec "${ns}c" taskset -c 1 timeout $((PERIOD + 15)) perfdhcp -4 -l kbc0 -R "$CLIENTS" -r "$1" -p "$PERIOD" 10.66.0.1 2>&1 || true)
  local rate
  rate=$(sed -n 's/^Rate: \([0-9.]*\) 4-way exchanges.*/\1/p' <<<"$out" | head -1)
  # drops over both exchanges (DISCOVER-OFFER and REQUEST-ACK)
  awk -v r="${rate:-0}" '/^sent packets:/ { s += $3 } /^drops:/ { d += $2 }
    END { printf "%.0f %.2f\n", r, (s > 0 ? 100 * d / s : 100) }' <<<"$out"
}

ladder() { # $1 name; prints "<best rate with < 1% drops> <peak achieved rate>"
  local best=0 peak=0 fails=0
  for r in $RATES; do
    read -r got drop < <(run "$r")
    printf '  %-5s offered %6s/s  → %6s DORA/s, %6s%% dropped\n' "$1" "$r" "$got" "$drop" >&2
    if [ "${got:-0}" -gt "$peak" ]; then peak=$got; fi
    if awk -v d="$drop" 'BEGIN{exit !(d < 1)}'; then best=$got; fails=0; else fails=$((fails + 1)); fi
    # two overloaded steps in a row: the server is past its knee
    [ "$fails" -ge 2 ] && break
  done
  echo "$best $peak"
}

echo "DHCP DORA throughput, $CLIENTS clients, ${PERIOD}s per step, $(nproc) CPUs ($(uname -n), load $(cut -d' ' -f1 /proc/loadavg)); other work on the machine adds noise" >&2
start_kea; read -r kea kea_peak < <(ladder kea); stop_server
start_kiln; read -r kiln kiln_peak < <(ladder kiln); stop_server
echo "best rate with < 1% drops: kea-dhcp4 (memfile, persist) ${kea}/s, kiln ${kiln}/s"
echo "peak achieved rate:        kea-dhcp4 ${kea_peak}/s, kiln ${kiln_peak}/s"
awk -v a="$kiln" -v b="$kea" -v pa="$kiln_peak" -v pb="$kea_peak" 'BEGIN {
  if (b > 0) printf "ratio kiln/kea (< 1%% drops): %.2f\n", a / b; else print "ratio kiln/kea (< 1% drops): n/a (kea had no clean step)"
  if (pb > 0) printf "ratio kiln/kea (peak):       %.2f\n", pa / pb }'
