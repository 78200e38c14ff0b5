#!/usr/bin/env bash
# TFTP benchmark: kiln against atftpd and tftpd-hpa on this machine, same client (atftp), same
# options. Prints each row's wall time per server and kiln's ratio to atftpd (atftpd time / kiln
# time: ≥ 1.00 means kiln is at least as fast).
#
#   npm run bench:tftp            (or: bash scripts/bench/tftp.sh)
#   TFTP_BENCH_MB=50 TFTP_BENCH_REPS=3 bash scripts/bench/tftp.sh
#
# Rows: a 50 MB file over loopback at blksize 1468 with windowsize 1, 4, 8; a 2 MB file through a
# UDP proxy adding 10 ms of round trip (where windowsize matters); 100 concurrent iPXE-sized
# (100 kB, blksize 1432) transfers, against kiln in one process and against kiln with 2 worker
# processes sharing the port with SO_REUSEPORT (rack.workers: 2; needs the native addon, else the
# row says so); 2% packet loss through the proxy (1 s configured retransmission timeout on every
# server and on the client; kiln learns a shorter one from the round trips it measures).
# Loopback, concurrency and windowed 10 ms rows take the median of REPS runs (the concurrency and
# 10 ms runs interleave the servers); the loss rows are single runs and vary with where the drops
# fall.
# tftpd-hpa does not implement windowsize (it answers lockstep), so its windowed rows are lockstep.
# Noise: 2 cores shared with other work; the client takes one core, the server the other.
set -euo pipefail
cd "$(dirname "$0")/../.."

MB=${TFTP_BENCH_MB:-50}
REPS=${TFTP_BENCH_REPS:-3}
WORK=$(mktemp -d /tmp/kiln-bench-tftp.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for cmd in atftp atftpd apt-get dpkg python3 sha256sum; do
  command -v "$cmd" >/dev/null || { echo "tftp bench: $cmd is missing (scripts/test-deps.sh)" >&2; exit 1; }
done

ROOT=$WORK/root
mkdir -p "$ROOT" "$WORK/out"
chmod 755 "$ROOT"
head -c $((MB * 1024 * 1024)) /dev/urandom >"$ROOT/big.bin"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$ROOT/mid.bin"
head -c $((1024 * 1024)) /dev/urandom >"$ROOT/loss.bin"
head -c $((512 * 1024)) /dev/urandom >"$ROOT/loss-small.bin"
head -c 100000 /dev/urandom >"$ROOT/ipxe.bin"
chmod 644 "$ROOT"/*
declare -A SUM
for f in "$ROOT"/*; do SUM[$(basename "$f")]=$(sha256sum "$f" | cut -d' ' -f1); done

free_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits for a line "listening N" in a file written by a background process; prints N.
wait_listening() {
  local file=$1 deadline=$((SECONDS + 30))
  until grep -q '^listening' "$file" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "tftp bench: $file never said listening" >&2; return 1; }
    sleep 0.1
  done
  grep '^listening' "$file" | head -1 | cut -d' ' -f2
}

# Polls a server with a small download until it answers.
wait_tftp() {
  local port=$1 deadline=$((SECONDS + 30))
  until timeout 5 atftp -g -r ipxe.bin -l "$WORK/out/probe" 127.0.0.1 "$port" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "tftp bench: nothing answers on $port" >&2; return 1; }
    sleep 0.2
  done
}

# --- servers ---------------------------------------------------------------------------------
declare -A PORT
PORT[atftpd]=$(free_port)
atftpd --daemon --no-fork --port "${PORT[atftpd]}" --bind-address 127.0.0.1 --user nobody --group nogroup \
  --retry-timeout 1 --maxthread 500 --logfile /dev/null "$ROOT" &
PIDS+=($!)

# tftpd-hpa conflicts with the atftpd package, so it is unpacked, not installed.
HPA=$WORK/hpa
mkdir -p "$HPA"
(cd "$HPA" && apt-get download tftpd-hpa >/dev/null 2>&1 && dpkg -x tftpd-hpa_*.deb x)
PORT[hpa]=$(free_port)
"$HPA/x/usr/sbin/in.tftpd" -L -u nobody -s "$ROOT" -a "127.0.0.1:${PORT[hpa]}" -T 1000000 &
PIDS+=($!)

node --import tsx scripts/bench/tftp-serve.ts --root "$ROOT" --port 0 --timeout-ms 1000 --retries 5 \
  >"$WORK/kiln.out" 2>"$WORK/kiln.err" &
PIDS+=($!)
PORT[kiln]=$(wait_listening "$WORK/kiln.out")

# The same server as 2 processes on one port, for the concurrency row only.
KILN2=0
if node --import tsx -e "import('./src/native/index.js').then((n) => process.exit(n.nativeStatus().available ? 0 : 1))" 2>/dev/null; then
  node --import tsx scripts/bench/tftp-serve.ts --root "$ROOT" --port 0 --timeout-ms 1000 --retries 5 --workers 2 \
    >"$WORK/kiln2.out" 2>"$WORK/kiln2.err" &
  PIDS+=($!)
  KILN2_PID=$!
  PORT[kiln2]=$(wait_listening "$WORK/kiln2.out")
  KILN2=1
fi

start_proxy() { # name target-port delay-ms loss → port
  node --import tsx scripts/bench/udp-proxy.ts --target-port "$2" --delay-ms "$3" --loss "$4" >"$WORK/proxy-$1.out" &
  PIDS+=($!)
}
SERVERS=(atftpd kiln hpa)
for s in "${SERVERS[@]}"; do
  start_proxy "delay-$s" "${PORT[$s]}" 5 0
  start_proxy "loss-$s" "${PORT[$s]}" 0 0.02
done
declare -A DELAY LOSS
for s in "${SERVERS[@]}"; do
  DELAY[$s]=$(wait_listening "$WORK/proxy-delay-$s.out")
  LOSS[$s]=$(wait_listening "$WORK/proxy-loss-$s.out")
  wait_tftp "${PORT[$s]}"
done

# --- measurement -----------------------------------------------------------------------------
# One download; prints seconds, or "fail" (wrong bytes, error, or past the deadline).
fetch() { # port file windowsize [deadline-s]
  local port=$1 file=$2 ws=$3 deadline=${4:-300} out="$WORK/out/$RANDOM$RANDOM" t0 t1
  t0=$(date +%s.%N)
  if timeout "$deadline" atftp --tftp-timeout 1 --option "blksize 1468" --option "windowsize $ws" \
    --option "tsize 0" -g -r "$file" -l "$out" 127.0.0.1 "$port" >/dev/null 2>&1 &&
    [ "$(sha256sum "$out" | cut -d' ' -f1)" = "${SUM[$file]}" ]; then
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
  else
    echo fail
  fi
  rm -f "$out"
}

# 100 iPXE-sized transfers started at once; prints seconds for all, or "fail".
concurrent() { # port
  local port=$1 t0 t1 ok=1 pids=()
  t0=$(date +%s.%N)
  for i in $(seq 1 100); do
    timeout 120 atftp --option "blksize 1432" --option "tsize 0" -g -r ipxe.bin -l "$WORK/out/c$i" 127.0.0.1 "$port" \
      >/dev/null 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  t1=$(date +%s.%N)
  for i in $(seq 1 100); do
    [ "$(sha256sum "$WORK/out/c$i" 2>/dev/null | cut -d' ' -f1)" = "${SUM[ipxe.bin]}" ] || ok=0
    rm -f "$WORK/out/c$i"
  done
  if [ $ok = 1 ]; then awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'; else echo fail; fi
}

median() { # values... ("fail" if any failed)
  local v
  for v in "$@"; do [ "$v" = fail ] && { echo fail; return; }; done
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

ratio() { # reference-time our-time
  if [ "$1" = fail ] || [ "$2" = fail ]; then echo "-"; else awk -v r="$1" -v k="$2" 'BEGIN { printf "%.2fx", r / k }'; fi
}

printf '\nTFTP benchmark: %s MB file, atftp client, %s runs per loopback row (median); %s cores: %s\n' \
  "$MB" "$REPS" "$(nproc)" "$(uptime | sed 's/.*load average/load average/')"
printf '%-40s %10s %10s %10s %12s %12s\n' row atftpd kiln tftpd-hpa kiln/atftpd hpa/atftpd
row() { # label atftpd kiln hpa
  printf '%-40s %10s %10s %10s %12s %12s\n' "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")"
}

for ws in 1 4 8; do
  declare -A T=()
  for s in "${SERVERS[@]}"; do
    runs=()
    for _ in $(seq 1 "$REPS"); do runs+=("$(fetch "${PORT[$s]}" big.bin "$ws")"); done
    T[$s]=$(median "${runs[@]}")
  done
  row "loopback ${MB} MB, windowsize $ws (s)" "${T[atftpd]}" "${T[kiln]}" "${T[hpa]}"
done

# The proxy's timers round each delay to its millisecond ticks, so one run differs from the next by
# a few percent whatever the server: windowsize 4 and 8 take the median of REPS interleaved runs;
# windowsize 1 (15 s a run) is a single run.
for ws in 1 4 8; do
  declare -A T=() RR=()
  reps=$REPS
  [ "$ws" = 1 ] && reps=1
  for _ in $(seq 1 "$reps"); do
    for s in "${SERVERS[@]}"; do RR[$s]+=" $(fetch "${DELAY[$s]}" mid.bin "$ws")"; done
  done
  # shellcheck disable=SC2086 # word splitting of the run lists is intended
  for s in "${SERVERS[@]}"; do T[$s]=$(median ${RR[$s]}); done
  row "10 ms RTT, 2 MB, windowsize $ws (s)" "${T[atftpd]}" "${T[kiln]}" "${T[hpa]}"
done

declare -A T=() CR=()
CSERVERS=("${SERVERS[@]}")
[ $KILN2 = 1 ] && CSERVERS+=(kiln2)
for _ in $(seq 1 "$REPS"); do
  for s in "${CSERVERS[@]}"; do CR[$s]+=" $(concurrent "${PORT[$s]}")"; done
done
# shellcheck disable=SC2086 # word splitting of the run lists is intended
for s in "${CSERVERS[@]}"; do T[$s]=$(median ${CR[$s]}); done
row "100 concurrent x 100 kB, blksize 1432 (s)" "${T[atftpd]}" "${T[kiln]}" "${T[hpa]}"
if [ $KILN2 = 1 ]; then
  row "  same, kiln as 2 processes (s)" "${T[atftpd]}" "${T[kiln2]}" "${T[hpa]}"
else
  echo "  same, kiln as 2 processes: skipped, the native addon (SO_REUSEPORT) is not built"
fi

declare -A T=()
for s in "${SERVERS[@]}"; do T[$s]=$(fetch "${LOSS[$s]}" loss-small.bin 1); done
row "2% loss, 512 kB, windowsize 1 (s)" "${T[atftpd]}" "${T[kiln]}" "${T[hpa]}"
declare -A T=()
for s in "${SERVERS[@]}"; do T[$s]=$(fetch "${LOSS[$s]}" loss.bin 8); done
row "2% loss, 1 MB, windowsize 8 (s)" "${T[atftpd]}" "${T[kiln]}" "${T[hpa]}"

echo
kill -TERM "${PIDS[2]}" 2>/dev/null || true
wait "${PIDS[2]}" 2>/dev/null || true
echo "kiln server counters: $(tail -1 "$WORK/kiln.err")"
if [ $KILN2 = 1 ]; then
  kill -TERM "$KILN2_PID" 2>/dev/null || true
  wait "$KILN2_PID" 2>/dev/null || true
  echo "kiln 2-process counters: $(tail -1 "$WORK/kiln2.err")"
fi
