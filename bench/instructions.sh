#!/usr/bin/env bash
# User-space instructions per keep-alive HTTPS request through authlens (and
# through the hudsucker peer when it has been built, see examples/bench.rs
# --peer hudsucker), counted by callgrind: one tunnel, HTTP/1.1, `GET /hello`
# answered with a short text/plain body, 300 requests of warm-up, then the
# measured ones. Instruction counts do not move with the machine's load the
# way CPU time does, so they show changes of a few percent that the bench's
# interleaved CPU ratios (about ±10% run to run) cannot. They leave out the
# kernel (about half of the proxy's CPU per small request, the same for both
# proxies), and instructions are not cycles: under valgrind glibc's memcpy
# runs a vector loop of some 8-10 bytes per counted instruction, natively it
# copies far more per cycle, so the part spent in memcpy is printed apart.
#
# authlens's workers empty their allocator caches at most once a second when
# they go idle (src/main.rs, idle_memory): under callgrind a request takes
# some 50 times longer, so that emptying would weigh per request about 50
# times what it weighs at full speed; its cost (everything under jemalloc's
# `thread.tcache.enabled` control) is left out and printed apart. Other work
# that runs by the clock (the caches refilled after it, jemalloc's purge,
# the pool's sweep) stays in, inflated the same way: against authlens.
#
# usage: bench/instructions.sh [REQUESTS (1000)] [AUTHLENS BINARY (target/release/authlens)]
# needs: valgrind, openssl, python3; cargo build --release --bin authlens first.
set -euo pipefail
shopt -s nullglob
requests=${1:-1000}
[[ "$requests" =~ ^[1-9][0-9]*$ ]] || { echo "REQUESTS must be a positive number" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
authlens=${2:-$target/release/authlens}
peer=$target/hudsucker-peer/hudsucker-peer-h1
for tool in valgrind callgrind_control callgrind_annotate openssl python3; do
    command -v "$tool" >/dev/null || { echo "bench/instructions.sh needs $tool" >&2; exit 1; }
done
[ -x "$authlens" ] || { echo "no $authlens: cargo build --release --bin authlens" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
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
# PID LOG COMMAND...: waits up to 60 s (valgrind starts slowly) until
# COMMAND succeeds; gives up with LOG if PID ends first or time runs out.
wait_until() {
    local pid=$1 log=$2
    shift 2
    for _ in $(seq 1 300); do
        "$@" && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "process $pid ended before it was ready:" >&2
            cat "$log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.2
    done
    echo "gave up waiting for: $*" >&2
    cat "$log" >&2 2>/dev/null || true
    exit 1
}
wait_until "${pids[0]}" /dev/null test -s "$work/upstream.port"
upstream=$(cat "$work/upstream.port")

# LOG: the port of the first "listening on ...:PORT" line (both proxies
# print one once bound).
listening_port() {
    sed -nE 's/.*listening on (http:\/\/)?[^ ]*:([0-9]+)( .*)?$/\2/p' "$1" | head -n 1
}

# NAME PID PORT CA: drives the load, then prints instructions per request.
measure() {
    local name=$1 pid=$2 port=$3 ca=$4
    python3 "$root/bench/instructions/client.py" "$port" "$ca" "$pid" "$requests"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local total=0 emptying=0 copies=0 file n
    for file in "$work/cg.$name".*; do
        n=$(awk '/^totals:/ {print $2}' "$file")
        total=$((total + ${n:-0}))
        n=$({ callgrind_annotate --inclusive=yes "$file" || true; } |
            awk '!n && /thread_tcache_enabled_ctl/ {gsub(",", "", $1); n = $1} END {print n + 0}')
        emptying=$((emptying + n))
        n=$({ callgrind_annotate --threshold=100 "$file" || true; } |
            awk '/memcpy|memmove/ {gsub(",", "", $1); s += $1} END {print s + 0}')
        copies=$((copies + n))
    done
    if [ "$total" -eq 0 ]; then
        echo "  $name: callgrind counted nothing (was the dump requested?)" >&2
        exit 1
    fi
    printf '  %-10s %8d instructions per request, %d of them in memcpy' \
        "$name" $(((total - emptying) / requests)) $((copies / requests))
    if [ "$emptying" -gt 0 ]; then
        printf ' (caches emptied when idle: %d more, left out)' $((emptying / requests))
    fi
    printf '\n'
}

echo "user-space instructions per keep-alive HTTPS request (H1, $requests requests, callgrind):"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.authlens.%p" \
    "$authlens" --listen 127.0.0.1:0 --certs "$work/certs" --upstream-ca "$work/ca.pem" \
    --connect-to "a.test:443:127.0.0.1:$upstream" --no-color >"$work/authlens.log" 2>&1 &
proxy=$!
pids+=("$proxy")
has_port() { [ -n "$(listening_port "$1")" ]; }
wait_until "$proxy" "$work/authlens.log" has_port "$work/authlens.log"
measure authlens "$proxy" "$(listening_port "$work/authlens.log")" "$work/certs/authlens-ca.pem"

if [ -x "$peer" ]; then
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.hudsucker.%p" \
        "$peer" "127.0.0.1:$upstream" "$work/ca.pem" "$work/peer-ca.pem" \
        >"$work/peer.log" 2>"$work/peer.err" &
    proxy=$!
    pids+=("$proxy")
    peer_ready() { has_port "$work/peer.log" && [ -s "$work/peer-ca.pem" ]; }
    wait_until "$proxy" "$work/peer.err" peer_ready
    measure hudsucker "$proxy" "$(listening_port "$work/peer.log")" "$work/peer-ca.pem"
else
    echo "  (no hudsucker peer at $peer: run examples/bench.rs --peer hudsucker once to build it)"
fi
