#!/usr/bin/env bash
# Boot-file HTTP throughput and CPU per GB: kiln (sendfile), kiln (stream fallback) and nginx
# (sendfile on), 1 and 50 concurrent curl clients on loopback. Ratios against nginx are printed.
#   bash scripts/bench/http.sh                 (npm run bench:http)
#   SIZE_MB=1024 RUNS=3 CONCURRENCY=50 PER_CLIENT_MB=128 MAX_SECONDS=600 bash scripts/bench/http.sh
# Bounded: the whole run is killed after MAX_SECONDS. Other work on this machine adds noise: run it
# twice and read the ratios, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_MB=${SIZE_MB:-1024}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v nginx >/dev/null || { echo "nginx is missing (apt-get install nginx-light)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset is missing (util-linux)" >&2; exit 1; }
[ -f build/Release/kiln_native.node ] || node scripts/build-native.mjs
echo "making a ${SIZE_MB} MiB file of random bytes..." >&2
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$tmp/file.bin"
chmod 755 "$tmp" && chmod 644 "$tmp/file.bin"
BENCH_FILE_BYTES=$((SIZE_MB * 1024 * 1024)) \
BENCH_RUNS=${RUNS:-3} \
BENCH_CONCURRENCY=${CONCURRENCY:-50} \
BENCH_PER_CLIENT_BYTES=$((${PER_CLIENT_MB:-128} * 1024 * 1024)) \
  timeout --signal=TERM "${MAX_SECONDS:-600}" node --import tsx scripts/bench/http-bench.ts "$tmp/file.bin" "$tmp"
