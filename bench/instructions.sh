#!/usr/bin/env bash
# User-space instructions per keep-alive HTTPS request through authlens (and
# through the hudsucker peer when it has been built, see examples/bench.rs
# --peer hudsucker), counted by callgrind: one tunnel, HTTP/1.1, `GET /hello`
# answered with a short text/plain body, 300 requests of warm-up, then the
# measured ones. Instruction counts do not move with the machine's load the
# way CPU time does, so they show changes of a few percent that the bench's
# interleaved CPU ratios (about ±10% run to run) cannot. They leave out the
# kernel (about half of the proxy's CPU per small request, the same for both
# proxies), and callgrind counts a `rep movsb` copy (glibc's memcpy for
# larger blocks) by the iteration: a copy of a few KiB weighs far more here
# than in CPU time, so the part spent in memcpy is printed apart.
#
# authlens's workers empty their allocator caches at most once a second when
# they go idle (src/main.rs, idle_memory): under callgrind a request takes
# some 50 times longer, so that emptying would weigh per request about 50
# times what it weighs at full speed; its cost (everything under jemalloc's
# `thread.tcache.enabled` control) is left out and printed apart.
#
# usage: bench/instructions.sh [REQUESTS (1000)] [AUTHLENS BINARY (target/release/authlens)]
# needs: valgrind, openssl, python3; cargo build --release --bin authlens first.
set -euo pipefail
requests=${1:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
authlens=${2:-$root/target/release/authlens}
peer=$root/target/hudsucker-peer/hudsucker-peer-h1
for tool in valgrind callgrind_control callgrind_annotate openssl python3; do
    command -v "$tool" >/dev/null || { echo "bench/instructions.sh needs $tool" >&2; exit 1; }
done
[ -x "$authlens" ] || { echo "no $authlens: cargo build --release --bin authlens" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A throwaway CA and a certificate for a.test, made here, never stored.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -keyout "$work/ca.key" -out "$work/ca.pem" -subj "/CN=authlens bench upstream CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/leaf.key" -out "$work/leaf.csr" -subj "/CN=a.test" 2>/dev/null
printf 'subjectAltName=DNS:a.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$work/leaf.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 1 -out "$work/leaf.pem" -extfile "$work/leaf.ext" 2>/dev/null

python3 "$root/bench/instructions/upstream.py" "$work/leaf.pem" "$work/leaf.key" "$work/upstream.port" &
pids+=($!)
wait_for() { # FILE: up to 60 s
    for _ in $(seq 1 300); do [ -s "$1" ] && return 0; sleep 0.2; done
    echo "timed out waiting for $1" >&2; exit 1
}
wait_for "$work/upstream.port"
upstream=$(cat "$work/upstream.port")

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# NAME PID PORT CA: drives the load, then prints instructions per request.
measure() {
    local name=$1 pid=$2 port=$3 ca=$4
    python3 "$root/bench/instructions/client.py" "$port" "$ca" "$pid" "$requests"
    sleep 1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local total=0 emptying=0 copies=0 file n
    for file in "$work/cg.$name".*; do
        n=$(awk '/^totals:/ {print $2}' "$file")
        total=$((total + ${n:-0}))
        n=$(callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
            awk '!n && /thread_tcache_enabled_ctl/ {gsub(",", "", $1); n = $1} END {print n + 0}')
        emptying=$((emptying + ${n:-0}))
        n=$(callgrind_annotate --threshold=100 "$file" 2>/dev/null |
            awk '/memcpy|memmove/ {gsub(",", "", $1); s += $1} END {print s + 0}')
        copies=$((copies + n))
    done
    printf '  %-10s %8d instructions per request, %d of them in memcpy' \
        "$name" $(((total - emptying) / requests)) $((copies / requests))
    if [ "$emptying" -gt 0 ]; then
        printf ' (caches emptied when idle: %d more, left out)' $((emptying / requests))
    fi
    printf '\n'
}

echo "user-space instructions per keep-alive HTTPS request (H1, $requests requests, callgrind):"
port=$(free_port)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.authlens.%p" \
    "$authlens" --listen "127.0.0.1:$port" --certs "$work/certs" --upstream-ca "$work/ca.pem" \
    --connect-to "a.test:443:127.0.0.1:$upstream" --no-color >"$work/authlens.log" 2>&1 &
proxy=$!
pids+=("$proxy")
wait_for "$work/certs/authlens-ca.pem"
for _ in $(seq 1 300); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
    sleep 0.2
done
measure authlens "$proxy" "$port" "$work/certs/authlens-ca.pem"

if [ -x "$peer" ]; then
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.hudsucker.%p" \
        "$peer" "127.0.0.1:$upstream" "$work/ca.pem" "$work/peer-ca.pem" >"$work/peer.log" 2>/dev/null &
    proxy=$!
    pids+=("$proxy")
    wait_for "$work/peer-ca.pem"
    for _ in $(seq 1 300); do grep -q "listening on" "$work/peer.log" && break; sleep 0.2; done
    port=$(sed -nE 's/^listening on .*:([0-9]+)$/\1/p' "$work/peer.log")
    measure hudsucker "$proxy" "$port" "$work/peer-ca.pem"
else
    echo "  (no hudsucker peer at $peer: run examples/bench.rs --peer hudsucker once to build it)"
fi
