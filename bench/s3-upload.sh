#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/s3-upload.sh — uploading one large file to S3 (OpenStack Swift with
# s3api on 127.0.0.1, started here by tests/servers/swift.sh) in one run:
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
# Every tool writes a fresh key; every upload is checked by reading the
# object's size back. Prints the times, MiB/s and kiln's speed-up over the
# faster of s3cmd and rclone. Not a test: nothing is asserted.
#
# Usage: bench/s3-upload.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
KILN=${KILN:-./build/kiln}
[ -x "$KILN" ] || make -s all
T=$(mktemp -d /var/tmp/kiln-bench-s3.XXXXXX)
trap 'tests/servers/swift.sh stop "$T/swift" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT

now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
rate() { python3 -c 'import sys; print("%.1f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$SIZE_MIB" "$1"; }

echo "bench: starting Swift + s3api on 127.0.0.1"
SWIFT_PROXY_WORKERS=2 SWIFT_BACKEND_WORKERS=2 tests/servers/swift.sh start "$T/swift"
eval "$(tests/servers/swift.sh env "$T/swift")"
s3cmd -c "$KILN_S3CMD_CONFIG" mb s3://bench >/dev/null

echo "bench: writing a $SIZE_MIB MiB random file"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$T/image.raw"

export RCLONE_CONFIG_SW_TYPE=s3 RCLONE_CONFIG_SW_PROVIDER=Other \
        RCLONE_CONFIG_SW_ACCESS_KEY_ID=$KILN_S3_ACCESS_KEY \
        RCLONE_CONFIG_SW_SECRET_ACCESS_KEY=$KILN_S3_SECRET_KEY \
        RCLONE_CONFIG_SW_ENDPOINT=$KILN_S3_ENDPOINT RCLONE_CONFIG_SW_REGION=us-east-1 \
        RCLONE_CONFIG_SW_FORCE_PATH_STYLE=true

check_size() { # KEY
        local got
        got=$(s3cmd -c "$KILN_S3CMD_CONFIG" ls "s3://bench/$1" | awk -v k="s3://bench/$1" '$4 == k { print $3 }')
        [ "$got" = "$((SIZE_MIB * 1024 * 1024))" ] || { echo "bench: $1 has $got bytes" >&2; exit 1; }
}

# The built-image layout kiln publish reads: OUTPUT/<name>/kiln-manifest.json.
mkdir -p "$T/out/img"
ln "$T/image.raw" "$T/out/img/img.raw"
cat >"$T/out/img/kiln-manifest.json" <<EOF
{"schema_version": 1, "name": "img", "id": "img", "arch": "x86_64", "role": null,
 "artifacts": [{"file": "img.raw", "format": "raw", "size": $((SIZE_MIB * 1024 * 1024)),
                "sha256": "$(sha256sum "$T/image.raw" | cut -d' ' -f1)", "sha512": null}]}
EOF
cat >"$T/spec.yaml" <<EOF
builds:
  img:
    source: {type: debian, suite: bookworm}
    publish:
      - {type: s3, name: bench, bucket: bench, key: kiln.raw, format: raw}
EOF
kiln_env=(env AWS_ACCESS_KEY_ID="$KILN_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$KILN_S3_SECRET_KEY"
        AWS_ENDPOINT_URL="$KILN_S3_ENDPOINT")

t0=$(now)
"${kiln_env[@]}" "$KILN" publish "$T/spec.yaml" --output-dir "$T/out" >"$T/kiln.log"
t1=$(now)
check_size kiln.raw
kiln_s=$(elapsed "$t0" "$t1")
echo "bench: kiln ${kiln_s}s"

t0=$(now)
"${kiln_env[@]}" "$KILN" publish --to s3://bench/kiln-bare.raw "$T/image.raw" >"$T/kiln-bare.log"
t1=$(now)
check_size kiln-bare.raw
bare_s=$(elapsed "$t0" "$t1")
echo "bench: kiln-bare ${bare_s}s"

t0=$(now)
s3cmd -c "$KILN_S3CMD_CONFIG" put --no-progress "$T/image.raw" s3://bench/s3cmd.raw >/dev/null
t1=$(now)
check_size s3cmd.raw
s3cmd_s=$(elapsed "$t0" "$t1")
echo "bench: s3cmd ${s3cmd_s}s"

t0=$(now)
# rclone's AWS SDK fails on an AWS_CA_BUNDLE it cannot use (plain http here)
env -u AWS_CA_BUNDLE rclone copyto --config /dev/null "$T/image.raw" sw:bench/rclone.raw
t1=$(now)
check_size rclone.raw
rclone_s=$(elapsed "$t0" "$t1")

best=$(python3 -c 'import sys; print(min(float(sys.argv[1]), float(sys.argv[2])))' "$s3cmd_s" "$rclone_s")
printf '%-10s %8ss %8s MiB/s\n' kiln "$kiln_s" "$(rate "$kiln_s")" kiln-bare "$bare_s" "$(rate "$bare_s")" s3cmd "$s3cmd_s" "$(rate "$s3cmd_s")" \
        rclone "$rclone_s" "$(rate "$rclone_s")"
python3 -c 'import sys; print("kiln speed-up over the faster of s3cmd and rclone: %.2fx (bare file: %.2fx)" % (float(sys.argv[1]) / float(sys.argv[2]), float(sys.argv[1]) / float(sys.argv[3])))' \
        "$best" "$kiln_s" "$bare_s"
