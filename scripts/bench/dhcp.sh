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
RATES=${RATES:-"5000 10000 15000 20000 25000 30000 35000 40000"}
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
  local rate sent recv
  rate=$(sed -n 's/^Rate: \([0-9.]*\) 4-way exchanges.*/\1/p' <<<"$out" | head -1)
  sent=$(awk '/^\*\*\*\*\* Statistics for: DHCPREQUEST/{f=1} f&&/^sent packets:/{print $3; exit}' <<<"$out")
  recv=$(awk '/^\*\*\*\*\* Statistics for: DHCPREQUEST/{f=1} f&&/^received packets:/{print $3; exit}' <<<"$out")
  local sentd recvd
  sentd=$(awk '/^\*\*\*\*\* Statistics for: DISCOVER/{f=1} f&&/^sent packets:/{print $3; exit}' <<<"$out")
  recvd=$(awk '/^\*\*\*\*\* Statistics for: DISCOVER/{f=1} f&&/^received packets:/{print $3; exit}' <<<"$out")
  awk -v r="${rate:-0}" -v s="${sent:-0}" -v v="${recv:-0}" -v sd="${sentd:-0}" -v vd="${recvd:-0}" 'BEGIN {
    tot = sd + s; got = vd + v; drop = tot > 0 ? 100 * (tot - got) / tot : 100; printf "%.0f %.2f\n", r, drop }'
}

ladder() { # $1 name; prints lines, last line "best <rate>"
  local best=0
  for r in $RATES; do
    read -r got drop < <(run "$r")
    printf '  %-5s offered %6s/s  → %6s DORA/s, %5s%% dropped\n' "$1" "$r" "$got" "$drop" >&2
    if awk -v d="$drop" 'BEGIN{exit !(d < 1)}'; then best=$got; else break; fi
  done
  echo "$best"
}

echo "DHCP DORA throughput, $CLIENTS clients, ${PERIOD}s per step, $(nproc) CPUs ($(uname -n)); busy machines add noise" >&2
start_kea; kea=$(ladder kea); stop_server
start_kiln; kiln=$(ladder kiln); stop_server
echo "kea-dhcp4 (memfile, persist): ${kea} exchanges/s"
echo "kiln:                          ${kiln} exchanges/s"
awk -v a="$kiln" -v b="$kea" 'BEGIN { if (b > 0) printf "ratio kiln/kea: %.2f\n", a / b; else print "ratio: n/a (kea measured 0)" }'
