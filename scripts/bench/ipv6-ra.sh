#!/usr/bin/env bash
# What rack.dhcp.ipv6_ra buys: seconds from QEMU start until iPXE (the BIOS virtio-net ROM from
# ipxe-qemu) asks for its boot script over HTTP, with kiln's DHCP + RA responder and with DHCP only.
# kiln's DhcpService (test/rack/dhcp-ra-child.ts) serves a managed subnet on a bridge in a network
# namespace with QEMU's tap on it; a TCP listener on the rack HTTP port notes when iPXE connects.
# There is no reference RA daemon here (radvd is not installed), so the figure is the ratio of the
# two runs. QEMU runs under TCG on a 2-core machine shared with other work: expect noise of ~1 s.
# Needs root. Bounded: RUNS × (2 boots of at most 60 s).
#   bash scripts/bench/ipv6-ra.sh          (RUNS=1)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-1}
ns=kbra$$
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add kbr type bridge
ip -n "$ns" addr add 10.77.0.1/24 dev kbr
ip -n "$ns" link set kbr up
ip -n "$ns" tuntap add kbtap mode tap
ip -n "$ns" link set kbtap master kbr up

config='{"subnets":[{"id":1,"cidr":"10.77.0.0/24","proxy_mode":false,"gateway":"10.77.0.1","dns_servers":[],"lease_seconds":600,"dynamic_ranges":[{"start":"10.77.0.100","end":"10.77.0.199"}],"reservations":[]}]}'

# One boot; prints the seconds from QEMU start to iPXE's HTTP connection (or "timeout").
boot() { # $1 = ipv6Ra true|false, $2 = tag
  rm -f "$tmp/http"
  ip netns exec "$ns" node -e '
    const t0 = Number(process.argv[1]);
    require("net").createServer((c) => { require("fs").writeFileSync(process.argv[2], String((Date.now() - t0) / 1000)); c.destroy(); process.exit(0); })
      .listen(5248, "10.77.0.1", () => console.log("ready"));
  ' "$(date +%s%3N)" "$tmp/http" >"$tmp/l.out" &
  local lpid=$!; pids+=("$lpid")
  ip netns exec "$ns" node --import tsx test/rack/dhcp-ra-child.ts \
    "{\"dataDir\":\"$tmp/d$2\",\"config\":$config,\"ipv6Ra\":$1}" >"$tmp/d.out" 2>"$tmp/d.err" &
  local dpid=$!; pids+=("$dpid")
  for _ in $(seq 200); do grep -q ready "$tmp/d.out" 2>/dev/null && grep -q ready "$tmp/l.out" && break; sleep 0.1; done
  # The bridge's link-local address must be past DAD before an RA can leave it.
  for _ in $(seq 100); do ip -n "$ns" -6 addr show dev kbr tentative | grep -q inet6 || break; sleep 0.1; done
  local start; start=$(date +%s%3N)
  ip netns exec "$ns" timeout 60 qemu-system-x86_64 -display none -serial none -m 256 -no-reboot \
    -netdev tap,id=n0,ifname=kbtap,script=no,downscript=no \
    -boot n -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:$(printf %02x "$2") >/dev/null 2>&1 &
  local qpid=$!; pids+=("$qpid")
  for _ in $(seq 600); do [ -s "$tmp/http" ] && break; kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
  local end; end=$(date +%s%3N)
  kill "$qpid" "$dpid" "$lpid" 2>/dev/null || true
  wait "$qpid" "$dpid" "$lpid" 2>/dev/null || true
  if [ -s "$tmp/http" ]; then awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f\n", (b-a)/1000}'; else echo timeout; fi
}

for i in $(seq "$RUNS"); do
  with=$(boot true "$i")
  without=$(boot false "$((i + 5))")
  echo "run $i: QEMU start → iPXE asks for its script: with RA responder ${with} s, without ${without} s"
  if [ "$with" != timeout ] && [ "$without" != timeout ]; then
    awk -v a="$with" -v b="$without" 'BEGIN{printf "  ratio without/with: %.2fx (%.1f s saved per boot)\n", b/a, b-a}'
  fi
done
