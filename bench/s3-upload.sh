#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/s3-upload.sh — uploading one large file to S3 (OpenStack Swift with
# s3api on 127.0.0.1, started here by tests/servers/swift.sh):
#
#   kiln     kiln publish SPEC: the file as a built image, with its SHA-256
#            in kiln-manifest.json as kiln build writes it (the normal path;
#            the hash is computed here, untimed, as the build computes it in
#            stream); multipart, 16 MiB parts, 4 in parallel
#   kiln-bare  kiln publish --to s3://… FILE: a bare file, which kiln hashes
#            (SHA-256) before uploading — the same upload plus one full read
#   s3cmd    s3cmd put (multipart, its default 15 MB chunks, one at a time)
#   rclone   rclone copyto (multipart, its default 4 concurrent 5 MiB chunks)
#
# The four run interleaved (bench/lib.sh: PAIRS rounds, default 3, after
# WARMUP untimed rounds, default 1), every run to a fresh key; every upload
# is checked by reading the object's size back (untimed). Prints each
# tool's median and spread (seconds and MiB/s), the ratios of medians and
# kiln's speed-up over the faster of s3cmd and rclone, with the load. The
# Swift servers share the machine's CPUs with the uploaders (their CPU time
# is not in the "cpu" figure). Not a test: nothing is asserted.
#
# Usage: [PAIRS=3] bench/s3-upload.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
SIZE_MIB=${1:-1024}
PAIRS=${PAIRS:-3}
KILN=$(realpath "${KILN:-./build/kiln}")
[ -x "$KILN" ] || make -s all
bench_init s3
T=$BENCH_TMP
bench_on_exit 'tests/servers/swift.sh stop "$T/swift" >/dev/null 2>&1'

echo "bench: starting Swift + s3api on 127.0.0.1" >&2
SWIFT_PROXY_WORKERS=2 SWIFT_BACKEND_WORKERS=2 tests/servers/swift.sh start "$T/swift" >&2
eval "$(tests/servers/swift.sh env "$T/swift")"
s3cmd -c "$KILN_S3CMD_CONFIG" mb s3://bench >/dev/null

echo "bench: writing a $SIZE_MIB MiB random file" >&2
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$T/image.raw"

export RCLONE_CONFIG_SW_TYPE=s3 RCLONE_CONFIG_SW_PROVIDER=Other \
        RCLONE_CONFIG_SW_ACCESS_KEY_ID=$KILN_S3_ACCESS_KEY \
        RCLONE_CONFIG_SW_SECRET_ACCESS_KEY=$KILN_S3_SECRET_KEY \
        RCLONE_CONFIG_SW_ENDPOINT=$KILN_S3_ENDPOINT RCLONE_CONFIG_SW_REGION=us-east-1 \
        RCLONE_CONFIG_SW_FORCE_PATH_STYLE=true

check_size() { # KEY
        local got
        got=$(s3cmd -c "$KILN_S3CMD_CONFIG" ls "s3://bench/$1" | awk -v k="s3://bench/$1" '$4 == k { print $3 }')
        [ "$got" = "$((SIZE_MIB * 1024 * 1024))" ] || bench_die "$1 has $got bytes"
}

# The built-image layout kiln publish reads: OUTPUT/<name>/kiln-manifest.json.
mkdir -p "$T/out/img"
ln "$T/image.raw" "$T/out/img/img.raw"
cat >"$T/out/img/kiln-manifest.json" <<EOF
{"schema_version": 1, "name": "img", "id": "img", "arch": "x86_64", "role": null,
 "artifacts": [{"file": "img.raw", "format": "raw", "size": $((SIZE_MIB * 1024 * 1024)),
                "sha256": "$(sha256sum "$T/image.raw" | cut -d' ' -f1)", "sha512": null}]}
EOF
kiln_env=(env AWS_ACCESS_KEY_ID="$KILN_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$KILN_S3_SECRET_KEY"
        AWS_ENDPOINT_URL="$KILN_S3_ENDPOINT")

# Every run writes a fresh key (round 0 is the warm-up); kiln's spec, which
# names the key, is written before the timing starts.
prepare_kiln() {
        cat >"$T/spec.yaml" <<EOF
builds:
  img:
    source: {type: debian, suite: bookworm}
    publish:
      - {type: s3, name: bench, bucket: bench, key: kiln-$1.raw, format: raw}
EOF
}
run_kiln() { "${kiln_env[@]}" "$KILN" publish "$T/spec.yaml" --output-dir "$T/out" >"$T/kiln.log" 2>&1; }
run_kiln-bare() {
        "${kiln_env[@]}" "$KILN" publish --to "s3://bench/kiln-bare-$1.raw" "$T/image.raw" >"$T/kiln-bare.log" 2>&1
}
run_s3cmd() { s3cmd -c "$KILN_S3CMD_CONFIG" put --no-progress "$T/image.raw" "s3://bench/s3cmd-$1.raw" >/dev/null; }
# rclone's AWS SDK fails on an AWS_CA_BUNDLE it cannot use (plain http here)
run_rclone() { env -u AWS_CA_BUNDLE rclone copyto --config /dev/null "$T/image.raw" "sw:bench/rclone-$1.raw"; }
bench_round_end() {
        local k
        for k in kiln kiln-bare s3cmd rclone; do
                check_size "$k-$1.raw"
                # keep the server's disk use flat
                s3cmd -c "$KILN_S3CMD_CONFIG" del "s3://bench/$k-$1.raw" >/dev/null
        done
}

bench_rounds "$PAIRS" kiln kiln-bare s3cmd rclone
rate() { awk -v s="$SIZE_MIB" -v t="$1" 'BEGIN { printf "%.1f", s / t }'; }
echo
for k in kiln kiln-bare s3cmd rclone; do
        read -r m lo hi < <(bench_field "$k" wall | bench_stats)
        printf '%-10s %8.2f s median (%.2f-%.2f)  %8s MiB/s\n' "$k" "$m" "$lo" "$hi" "$(rate "$m")"
done
best=$(printf '%s\n' "$(bench_median s3cmd wall)" "$(bench_median rclone wall)" | sort -g | head -n 1)
echo "kiln speed-up over the faster of s3cmd and rclone (ratio of medians):" \
        "$(bench_ratio "$best" "$(bench_median kiln wall)")x (bare file: $(bench_ratio "$best" "$(bench_median kiln-bare wall)")x)"
bench_caveat "the same file and server for every tool; kiln's publish reads the SHA-256 from the manifest"
bench_caveat "  (computed by the build, untimed here); kiln-bare hashes the file first, in the timing"
bench_caveat "part sizes and parallelism are each tool's defaults (kiln 16 MiB x 4, s3cmd 15 MB x 1,"
bench_caveat "  rclone 5 MiB x 4)"
bench_report kiln kiln kiln-bare s3cmd rclone
