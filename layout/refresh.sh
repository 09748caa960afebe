#!/bin/sh
# Remakes layout/hot-text.txt, the functions the linker puts first in the
# release binary, in this order (see build.rs): those the proxy runs from
# start-up to its first requests (`--only none`: one through a TLS tunnel,
# then one plain-HTTP request), then those it runs under the bench's loads
# (`--peer hudsucker`: HTTP/1.1 and HTTP/2 keep-alive, 1 MiB bodies), as
# valgrind's callgrind saw them. Run from the repository root after a
# toolchain or dependency upgrade (function names carry the crates' hashes);
# needs valgrind, nm and what `--peer hudsucker` needs. Takes a few minutes.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --bin authlens
cp target/release/authlens "$work/authlens"
nm "$work/authlens" | awk '$2 ~ /^[tT]$/ { print $3 }' | sort -u >"$work/text"

# The functions of the binary that the proxy ran in `bench $*`, sorted.
# The bench kills the wrapper it started, not the traced proxy: callgrind
# is then asked for what it saw so far (`*.out.1`: a name is given in full
# on first use, then as an id), before a SIGTERM stops the proxy (what it
# runs to stop is left out).
traced() {
  out="$work/$1.run"
  shift
  mkdir "$out"
  cat >"$out/authlens" <<EOF
#!/bin/sh
valgrind --tool=callgrind --demangle=no --log-file="$out/vg.%p.log" \\
  --callgrind-out-file="$out/cg.%p.out" "$work/authlens" "\$@" &
echo \$! >>"$out/pids"
wait
EOF
  chmod +x "$out/authlens"
  cargo run --release --example bench -- "$@" --authlens-bin "$out/authlens" >"$out/bench.log"
  for pid in $(cat "$out/pids"); do
    callgrind_control --dump "$pid" >/dev/null 2>&1
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 1; done
  done
  grep -hoE '^c?fn=\([0-9]+\) .*' "$out"/cg.*.out.1 |
    sed -E "s/^c?fn=\([0-9]+\) //; s/'[0-9]+\$//" | sort -u | comm -12 - "$work/text"
}

traced start --only none >"$work/start"
traced load --only none --peer hudsucker --seconds 1 --rounds 1 >"$work/load"
{
  cat "$work/start"
  comm -13 "$work/start" "$work/load"
} >layout/hot-text.txt
echo "layout/hot-text.txt: $(wc -l <"$work/start") functions from start-up to the first requests, $(wc -l <layout/hot-text.txt) in all"
