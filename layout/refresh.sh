#!/bin/sh
# Remakes layout/hot-text.txt, the functions the linker puts first in the
# release binary (see build.rs): every function of the binary that the proxy
# runs in the bench's hudsucker comparison (start-up, the first request,
# HTTP/1.1 and HTTP/2 keep-alive loads, 1 MiB bodies), as valgrind's
# callgrind saw it. Run from the repository root after a toolchain or
# dependency upgrade (function names carry the crates' hashes); needs
# valgrind, nm and what `--peer hudsucker` needs. Takes a few minutes.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --bin authlens
cp target/release/authlens "$work/authlens"
cat >"$work/traced" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --demangle=no --dump-every-bb=20000000 \
  --log-file="$work/vg.%p.log" --callgrind-out-file="$work/cg.%p.out" \
  "$work/authlens" "\$@"
EOF
chmod +x "$work/traced"
cargo run --release --example bench -- --only none --peer hudsucker --seconds 1 --rounds 1 \
  --authlens-bin "$work/traced" >"$work/bench.log"
# Functions callgrind saw run or be called (names after their first use are
# compressed to ids), without its recursion marks, that are in the binary.
grep -hoE '^c?fn=\([0-9]+\) .*' "$work"/cg.* | sed -E "s/^c?fn=\([0-9]+\) //; s/'[0-9]+\$//" |
  sort -u >"$work/ran"
nm "$work/authlens" | awk '$2 ~ /^[tT]$/ { print $3 }' | sort -u >"$work/text"
comm -12 "$work/ran" "$work/text" >layout/hot-text.txt
echo "layout/hot-text.txt: $(wc -l <layout/hot-text.txt) functions"
