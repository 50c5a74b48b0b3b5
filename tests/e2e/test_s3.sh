#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The S3 publisher against a real OpenStack Swift with s3api on 127.0.0.1
# (tests/servers/swift.sh), with faults injected by tests/servers/faultproxy.py.
# Objects are read back with s3cmd, an independent S3 client.
. "$(dirname "$0")/lib.sh"

SWIFT_DIR=$(mktemp -d /var/tmp/kiln-e2e-swift.XXXXXX) || exit 1
# One EXIT trap: stop Swift (its own pids only), then lib.sh's cleanups.
trap 'tests/servers/swift.sh stop "$SWIFT_DIR/s" >/dev/null 2>&1; rm -rf "$SWIFT_DIR" "${E2E_CLEANUP[@]}"' EXIT
if ! tests/servers/swift.sh start "$SWIFT_DIR/s" >"$SWIFT_DIR/start.log" 2>&1; then
        cat "$SWIFT_DIR/start.log"
        echo "FAIL swift_server"
        echo "0 passed, 1 failed"
        exit 1
fi
eval "$(tests/servers/swift.sh env "$SWIFT_DIR/s")"
BUCKET=kiln-e2e
s3cmd -c "$KILN_S3CMD_CONFIG" mb "s3://$BUCKET" >/dev/null || exit 1

# A file large enough for multipart with 5 MiB parts: 5 parts, the last short.
BIG=$SWIFT_DIR/big.raw
head -c $((23 * 1024 * 1024 + 12345)) /dev/urandom >"$BIG"
BIG_SHA=$(sha256sum "$BIG" | cut -d' ' -f1)
MP=(--set part_size=5MiB --set multipart_threshold=8MiB)

# kiln_s3 [kiln args...] — kiln publish with the server's credentials.
kiln_s3() {
        env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID="$KILN_S3_ACCESS_KEY" \
                AWS_SECRET_ACCESS_KEY="$KILN_S3_SECRET_KEY" AWS_ENDPOINT_URL="$KILN_S3_ENDPOINT" "$@"
}

# remote_sha KEY — sha256 of the object as s3cmd reads it back.
remote_sha() {
        s3cmd -c "$KILN_S3CMD_CONFIG" get --force "s3://$BUCKET/$1" "$T_TMP/back" >/dev/null 2>&1 ||
                { echo "s3cmd get $1 failed"; return 1; }
        sha256sum "$T_TMP/back" | cut -d' ' -f1
        rm -f "$T_TMP/back"
}

# exists KEY — whether the object exists.
exists() {
        s3cmd -c "$KILN_S3CMD_CONFIG" ls "s3://$BUCKET/$1" 2>/dev/null | grep -q "s3://$BUCKET/$1\$"
}

json_field() { # FILE FIELD — first value of "FIELD" in kiln's JSON
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0][sys.argv[2]])' "$1" "$2"
}

# start_proxy ARGS... — faultproxy in front of Swift; sets PROXY_EP,
# PROXY_PID, PROXY_PORT_FILE. Waits for its port file (with a deadline).
start_proxy() {
        PROXY_PORT_FILE=$T_TMP/proxy.port
        python3 tests/servers/faultproxy.py --target "${KILN_S3_ENDPOINT#http://}" \
                --port-file "$PROXY_PORT_FILE" "$@" &
        PROXY_PID=$!
        local deadline=$((SECONDS + 20))
        until [ -s "$PROXY_PORT_FILE" ]; do
                kill -0 "$PROXY_PID" 2>/dev/null || { echo "faultproxy died"; return 1; }
                [ $SECONDS -lt $deadline ] || { echo "faultproxy not ready"; return 1; }
                sleep 0.05
        done
        PROXY_EP=http://127.0.0.1:$(cat "$PROXY_PORT_FILE")
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; }

t_image_publish_and_skip() {
        e2e_minimal_build || return 1
        local spec=$T_TMP/kiln.yaml
        cp examples/minimal/kiln.yaml "$spec"
        cat >>"$spec" <<EOF
    publish:
      - type: s3
        name: local-swift
        bucket: $BUCKET
        key: ci/\${var.suite}/\${build.name}.qcow2
        format: qcow2
EOF
        local qcow=$E2E_MIN_OUT/minimal/minimal.qcow2 want
        want=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print([a["sha256"] for a in m["artifacts"] if a["format"]=="qcow2"][0])' \
                "$E2E_MIN_OUT/minimal/kiln-manifest.json")
        assert_exit 0 kiln_s3 "$KILN" publish "$spec" --output-dir "$E2E_MIN_OUT" || return 1
        assert_contains "$(<"$T_OUT")" "uploaded" || return 1
        assert_contains "$(<"$T_OUT")" "s3://$BUCKET/ci/bookworm/minimal.qcow2" || return 1
        assert_eq "$want" "$(remote_sha ci/bookworm/minimal.qcow2)" "read back = manifest sha256" || return 1
        assert_eq "$(sha256sum "$qcow" | cut -d' ' -f1)" "$want" "local file = manifest" || return 1
        s3cmd -c "$KILN_S3CMD_CONFIG" get --force "s3://$BUCKET/ci/bookworm/minimal.qcow2.sha256" \
                "$T_TMP/sidecar" >/dev/null 2>&1 || return 1
        assert_eq "$want  minimal.qcow2" "$(<"$T_TMP/sidecar")" "sidecar in sha256sum format" || return 1
        (cd "$E2E_MIN_OUT/minimal" && sha256sum -c "$T_TMP/sidecar" >/dev/null) ||
                t_fail "sha256sum -c rejects the sidecar" || return 1
        # Again: nothing is sent.
        assert_exit 0 kiln_s3 "$KILN" publish "$spec" --output-dir "$E2E_MIN_OUT" --json || return 1
        assert_eq "skipped-identical" "$(json_field "$T_OUT" status)" || return 1
        assert_eq "0" "$(json_field "$T_OUT" bytes_sent)" "bytes sent on the second run" || return 1
        # --to selects targets by name; an unknown name is a usage error.
        assert_exit 0 kiln_s3 "$KILN" publish "$spec" --output-dir "$E2E_MIN_OUT" --to local-swift || return 1
        assert_contains "$(<"$T_OUT")" "skipped-identical" || return 1
        assert_exit 2 kiln_s3 "$KILN" publish "$spec" --output-dir "$E2E_MIN_OUT" --to nowhere || return 1
        assert_contains "$(<"$T_ERR")" "nowhere" || return 1
}

t_multipart_readback() {
        assert_exit 0 kiln_s3 "$KILN_SAN" publish "${MP[@]}" --to "s3://$BUCKET/mp/" "$BIG" || return 1
        assert_contains "$(<"$T_OUT")" "uploaded" || return 1
        assert_eq "$BIG_SHA" "$(remote_sha mp/big.raw)" || return 1
        # A multipart object: its ETag is md5-of-md5s with the part count.
        s3cmd -c "$KILN_S3CMD_CONFIG" info "s3://$BUCKET/mp/big.raw" >"$T_TMP/info" 2>&1
        assert_contains "$(<"$T_TMP/info")" "-5" || return 1
        exists mp/big.raw.sha256 || t_fail "no sidecar" || return 1
        assert_exit 0 kiln_s3 "$KILN" publish --json "${MP[@]}" --to "s3://$BUCKET/mp/" "$BIG" || return 1
        assert_eq "skipped-identical" "$(json_field "$T_OUT" status)" || return 1
        assert_eq "0" "$(json_field "$T_OUT" bytes_sent)" || return 1
}

t_wrong_secret() {
        local secret=not-the-secret-key-4711
        assert_exit 1 env AWS_ACCESS_KEY_ID="$KILN_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY=$secret \
                AWS_ENDPOINT_URL="$KILN_S3_ENDPOINT" "$KILN" -v publish --to "s3://$BUCKET/ws/" "$BIG" ||
                return 1
        assert_contains "$(<"$T_OUT")" "failed" || return 1
        assert_contains "$(<"$T_OUT")" "the secret key is wrong" || return 1
        assert_contains "$(<"$T_OUT")" "SignatureDoesNotMatch" || return 1
        # -v logged the requests, but neither the secret nor the signature.
        assert_contains "$(<"$T_ERR")" "Authorization: <sensitive>" || return 1
        assert_not_contains "$(<"$T_OUT")$(<"$T_ERR")" "$secret" || return 1
        assert_not_contains "$(<"$T_ERR")" "Signature=" || return 1
        ! exists ws/big.raw.sha256 || t_fail "a sidecar was written" || return 1
        ! exists ws/big.raw || t_fail "an object was written" || return 1
}

t_credentials_file() {
        mkdir -p "$T_TMP/home/.aws"
        printf '[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing1\n\n[swift]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
                "$KILN_S3_ACCESS_KEY" "$KILN_S3_SECRET_KEY" >"$T_TMP/home/.aws/credentials"
        head -c 100000 /dev/urandom >"$T_TMP/small.img"
        assert_exit 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$T_TMP/home" \
                AWS_PROFILE=swift AWS_ENDPOINT_URL="$KILN_S3_ENDPOINT" \
                "$KILN" publish --to "s3://$BUCKET/cf/x.img" "$T_TMP/small.img" || return 1
        assert_eq "$(sha256sum "$T_TMP/small.img" | cut -d' ' -f1)" "$(remote_sha cf/x.img)" || return 1
        # No credentials at all: a clear message, nothing sent.
        assert_exit 1 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_PROFILE \
                HOME="$T_TMP/nohome" AWS_ENDPOINT_URL="$KILN_S3_ENDPOINT" \
                "$KILN" publish --to "s3://$BUCKET/cf/y.img" "$T_TMP/small.img" || return 1
        assert_contains "$(<"$T_OUT")" "no credentials" || return 1
}

t_cut_then_resume() {
        # The connection dies about half-way; with retries: 0 the run fails
        # and leaves the multipart upload open ...
        start_proxy --cut-after $((12 * 1024 * 1024)) || return 1
        assert_exit 1 kiln_s3 "$KILN_SAN" publish "${MP[@]}" --set retries=0 --set endpoint="$PROXY_EP" \
                --to "s3://$BUCKET/resume/" "$BIG" || { stop_proxy; return 1; }
        [ -e "$PROXY_PORT_FILE.fired" ] || { stop_proxy; t_fail "the fault never fired"; return 1; }
        assert_contains "$(<"$T_OUT")" "uploading part" || { stop_proxy; return 1; }
        ! exists resume/big.raw.sha256 || { stop_proxy; t_fail "sidecar after a failed upload"; return 1; }
        # ... which the next run resumes: it sends less than the file.
        assert_exit 0 kiln_s3 "$KILN_SAN" publish --json "${MP[@]}" --set endpoint="$PROXY_EP" \
                --to "s3://$BUCKET/resume/" "$BIG" || { stop_proxy; return 1; }
        stop_proxy
        assert_eq "uploaded" "$(json_field "$T_OUT" status)" || return 1
        local sent size
        sent=$(json_field "$T_OUT" bytes_sent)
        size=$(stat -c %s "$BIG")
        [ "$sent" -gt 0 ] && [ "$sent" -lt "$size" ] ||
                t_fail "resume sent $sent bytes of $size (expected some but not all)" || return 1
        assert_eq "$BIG_SHA" "$(remote_sha resume/big.raw)" || return 1
        exists resume/big.raw.sha256 || t_fail "no sidecar" || return 1
}

t_cut_retried_in_run() {
        start_proxy --cut-after $((9 * 1024 * 1024)) || return 1
        assert_exit 0 kiln_s3 "$KILN" publish --json "${MP[@]}" --set endpoint="$PROXY_EP" \
                --to "s3://$BUCKET/retry/" "$BIG" || { stop_proxy; return 1; }
        stop_proxy
        [ -e "$PROXY_PORT_FILE.fired" ] || t_fail "the fault never fired" || return 1
        assert_eq "$BIG_SHA" "$(remote_sha retry/big.raw)" || return 1
        # bytes_sent: what the server got, once; the cut attempt is counted
        # apart.
        assert_eq "$(stat -c %s "$BIG")" "$(json_field "$T_OUT" bytes_sent)" "bytes_sent" || return 1
        [ "$(json_field "$T_OUT" bytes_retried)" -gt 0 ] || t_fail "bytes_retried is 0" || return 1
        # A single PUT cut and retried: the same.
        rm -f "$PROXY_PORT_FILE"*
        start_proxy --cut-after 150000 || return 1
        head -c 1000000 /dev/urandom >"$T_TMP/one.raw"
        assert_exit 0 kiln_s3 "$KILN" publish --json --set endpoint="$PROXY_EP" \
                --to "s3://$BUCKET/retry1/one.raw" "$T_TMP/one.raw" || { stop_proxy; return 1; }
        stop_proxy
        [ -e "$PROXY_PORT_FILE.fired" ] || t_fail "the fault never fired" || return 1
        assert_eq 1000000 "$(json_field "$T_OUT" bytes_sent)" "bytes_sent of a single PUT" || return 1
        [ "$(json_field "$T_OUT" bytes_retried)" -gt 0 ] || t_fail "bytes_retried is 0" || return 1
}

t_flipped_byte_detected() {
        start_proxy --flip-at $((9 * 1024 * 1024)) || return 1
        assert_exit 1 kiln_s3 "$KILN" publish "${MP[@]}" --set endpoint="$PROXY_EP" \
                --to "s3://$BUCKET/flip/" "$BIG" || { stop_proxy; return 1; }
        stop_proxy
        [ -e "$PROXY_PORT_FILE.fired" ] || t_fail "the fault never fired" || return 1
        assert_contains "$(<"$T_OUT")" "corrupted" || return 1
        ! exists flip/big.raw.sha256 || t_fail "sidecar after corruption" || return 1
        # Single PUT: the same.
        start_proxy --flip-at 3000 || return 1
        head -c 200000 /dev/urandom >"$T_TMP/small.raw"
        assert_exit 1 kiln_s3 "$KILN" publish --set endpoint="$PROXY_EP" \
                --to "s3://$BUCKET/flip1/" "$T_TMP/small.raw" || { stop_proxy; return 1; }
        stop_proxy
        ! exists flip1/small.raw.sha256 || t_fail "sidecar after corruption" || return 1
}

t_invalid_publish_section() {
        cat >"$T_TMP/bad.yaml" <<'EOF'
builds:
  x:
    source: {type: debian, suite: bookworm}
    publish:
      - type: s3
        bucket: Not_A_Bucket
        part_size: 1MiB
        adressing: path
      - type: ftp
EOF
        assert_exit 2 "$KILN" publish "$T_TMP/bad.yaml" || return 1
        local e
        e=$(<"$T_ERR")
        assert_contains "$e" "bad.yaml:6:17: error:" || return 1
        assert_contains "$e" "not a valid bucket name" || return 1
        assert_contains "$e" "bad.yaml:7:20: error:" || return 1
        assert_contains "$e" "adressing" || return 1
        assert_contains "$e" "addressing" || return 1
        assert_contains "$e" "bad.yaml:9:15: error: publish: unknown type 'ftp'" || return 1
}

t_help() {
        assert_exit 0 "$KILN" publish --help || return 1
        assert_contains "$(<"$T_OUT")" "skipped-identical" || return 1
        assert_exit 2 "$KILN" publish --to ftp://x/y "$BIG" || return 1
}


# json_error FILE — FILE holds one JSON document (else this fails); prints its "error".
json_error() {
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$1"
}

# Files that are not regular are refused before being read (a FIFO must not
# block), with a message saying what they are; --json prints a document on
# every failure path; a missing file names the real error.
t_not_a_regular_file() {
        mkfifo "$T_TMP/fifo" || return 1
        mkdir "$T_TMP/dir" || return 1
        local f want
        for f in "$T_TMP/fifo:a FIFO" "/dev/null:a character device" "$T_TMP/dir:a directory" \
                "$T_TMP/missing.raw:No such file or directory"; do
                want=${f##*:}
                f=${f%:*}
                assert_exit 1 timeout 20 "$KILN_SAN" publish --json --to "s3://$BUCKET/nr/" "$f" || return 1
                assert_contains "$(json_error "$T_OUT")" "$f: " || return 1
                assert_contains "$(json_error "$T_OUT")" "$want" || return 1
                assert_contains "$(<"$T_ERR")" "$want" || return 1
        done
        # The same for an image whose manifest names a FIFO (size 0).
        mkdir -p "$T_TMP/out/m" && mkfifo "$T_TMP/out/m/m.raw" || return 1
        printf '{"name": "m", "artifacts": [{"file": "m.raw", "format": "raw", "size": 0, "sha256": "%s"}]}' \
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 >"$T_TMP/out/m/kiln-manifest.json"
        printf 'builds:\n  m:\n    source: {type: debian, suite: bookworm}\n    publish: {type: s3, bucket: %s}\n' \
                "$BUCKET" >"$T_TMP/m.yaml"
        assert_exit 1 kiln_s3 timeout 20 "$KILN" publish --json "$T_TMP/m.yaml" --output-dir "$T_TMP/out" || return 1
        assert_contains "$(json_error "$T_OUT")" "a FIFO" || return 1
        ! exists m.raw || t_fail "a FIFO was published" || return 1
        # Usage errors print a document too.
        assert_exit 2 "$KILN" publish --json --parallel 99 "$BIG" || return 1
        assert_contains "$(json_error "$T_OUT")" "--parallel" || return 1
        assert_exit 2 "$KILN" publish --no-such-option --json "$BIG" || return 1
        json_error "$T_OUT" >/dev/null || t_fail "no JSON document" || return 1
}

# Keys: a leading '/' is refused (spec: located; --to: a usage error), never
# silently dropped; S3's limit is 1024 UTF-8 bytes, exactly.
t_key_rules() {
        local k1024 k1025 ku
        k1024=k/$(head -c 1022 /dev/zero | tr '\0' a)
        k1025=${k1024}b
        ku=u/$(python3 -c 'print("é" * 511)') # 1024 bytes, 513 characters
        printf 'builds:\n  x:\n    source: {type: debian, suite: bookworm}\n    publish:\n      - {type: s3, bucket: b12, key: "%s"}\n      - {type: s3, bucket: b12, key: "%s"}\n' \
                "$k1024" "$ku" >"$T_TMP/ok.yaml"
        assert_exit 0 "$KILN" validate "$T_TMP/ok.yaml" || return 1
        printf 'builds:\n  x:\n    source: {type: debian, suite: bookworm}\n    publish:\n      - {type: s3, bucket: b12, key: "%s"}\n      - {type: s3, bucket: b12, key: /lead/x.raw}\n' \
                "$k1025" >"$T_TMP/bad.yaml"
        assert_exit 2 "$KILN" publish "$T_TMP/bad.yaml" || return 1
        assert_contains "$(<"$T_ERR")" "bad.yaml:5:38: error: publish target 's3': key: 1025 bytes, longer than S3's limit of 1024 bytes" || return 1
        assert_contains "$(<"$T_ERR")" "bad.yaml:6:38: error: publish target 's3': key: starts with '/'" || return 1
        # On the command line: refused, nothing uploaded under the key without '/'.
        head -c 1000 /dev/urandom >"$T_TMP/s.raw"
        assert_exit 2 kiln_s3 "$KILN" publish --to "s3://$BUCKET//lead/s.raw" "$T_TMP/s.raw" || return 1
        assert_contains "$(<"$T_ERR")" "starts with '/'" || return 1
        ! exists lead/s.raw || t_fail "the leading '/' was dropped and the file uploaded" || return 1
        # 1024 bytes are published (and read back); without a sidecar, whose
        # key would be too long, which the result says.
        assert_exit 0 kiln_s3 "$KILN_SAN" publish --json --to "s3://$BUCKET/$ku" "$T_TMP/s.raw" || return 1
        assert_eq uploaded "$(json_field "$T_OUT" status)" || return 1
        assert_contains "$(json_field "$T_OUT" note)" "no .sha256 sidecar" || return 1
        assert_eq "$(sha256sum "$T_TMP/s.raw" | cut -d' ' -f1)" "$(remote_sha "$ku")" || return 1
        assert_exit 0 kiln_s3 "$KILN" publish --json --to "s3://$BUCKET/$ku" "$T_TMP/s.raw" || return 1
        assert_eq skipped-identical "$(json_field "$T_OUT" status)" || return 1
        assert_exit 2 kiln_s3 "$KILN" publish --to "s3://$BUCKET/$k1025" "$T_TMP/s.raw" || return 1
        assert_contains "$(<"$T_ERR")" "1025 bytes" || return 1
}

# An object replaced behind kiln's back by one of the same size is not
# "identical": its own recorded sha256 is missing or different.
t_overwritten_out_of_band() {
        head -c 300000 /dev/urandom >"$T_TMP/a.raw"
        head -c 300000 /dev/urandom >"$T_TMP/b.raw"
        local want other
        want=$(sha256sum "$T_TMP/a.raw" | cut -d' ' -f1)
        other=$(sha256sum "$T_TMP/b.raw" | cut -d' ' -f1)
        assert_exit 0 kiln_s3 "$KILN" publish --to "s3://$BUCKET/oob/a.raw" "$T_TMP/a.raw" || return 1
        # Replaced without metadata (the sidecar stays, naming a's sha256) ...
        s3cmd -c "$KILN_S3CMD_CONFIG" put "$T_TMP/b.raw" "s3://$BUCKET/oob/a.raw" >/dev/null 2>&1 || return 1
        assert_exit 0 kiln_s3 "$KILN" publish --json --to "s3://$BUCKET/oob/a.raw" "$T_TMP/a.raw" || return 1
        assert_eq uploaded "$(json_field "$T_OUT" status)" "after an overwrite without metadata" || return 1
        assert_eq "$want" "$(remote_sha oob/a.raw)" || return 1
        # ... and with another recorded sha256.
        s3cmd -c "$KILN_S3CMD_CONFIG" put --add-header="x-amz-meta-sha256:$other" "$T_TMP/b.raw" \
                "s3://$BUCKET/oob/a.raw" >/dev/null 2>&1 || return 1
        assert_exit 0 kiln_s3 "$KILN" publish --json --to "s3://$BUCKET/oob/a.raw" "$T_TMP/a.raw" || return 1
        assert_eq uploaded "$(json_field "$T_OUT" status)" "after an overwrite with another sha256" || return 1
        assert_eq "$want" "$(remote_sha oob/a.raw)" || return 1
        # Unchanged: skipped.
        assert_exit 0 kiln_s3 "$KILN" publish --json --to "s3://$BUCKET/oob/a.raw" "$T_TMP/a.raw" || return 1
        assert_eq skipped-identical "$(json_field "$T_OUT" status)" || return 1
}

# Hashing (and uploading) a large file shows progress on stderr: lines when
# stderr is not a terminal, a redrawn line on one; never in --json stdout.
t_progress() {
        assert_exit 0 kiln_s3 "$KILN" publish --json "${MP[@]}" --to "s3://$BUCKET/progress/" "$BIG" || return 1
        assert_contains "$(<"$T_ERR")" "hashing $BIG: 100% (23.0 MiB of 23.0 MiB" || return 1
        assert_contains "$(<"$T_ERR")" "hashing $BIG: 2" || return 1 # a 25% step
        assert_not_contains "$(<"$T_OUT")" "hashing" || return 1
        json_field "$T_OUT" status >/dev/null || return 1
        # A terminal (a pty): the line is redrawn in place.
        kiln_s3 python3 -c 'import pty, sys; pty.spawn(sys.argv[1:])' "$KILN" publish "${MP[@]}" \
                --to "s3://$BUCKET/progress/" "$BIG" >"$T_TMP/pty.out" 2>&1 </dev/null || true
        assert_contains "$(<"$T_TMP/pty.out")" $'\r\033[K  hashing '"$BIG: " || return 1
        assert_contains "$(<"$T_TMP/pty.out")" "skipped-identical" || return 1
}

# upload_id_of KEY — the id s3cmd lists for KEY's unfinished upload.
s3cmd_uploads() {
        s3cmd -c "$KILN_S3CMD_CONFIG" multipart "s3://$BUCKET" 2>/dev/null | awk 'NR > 2 { print $2, $3 }'
}

# Unfinished multipart uploads can be listed and aborted (ListMultipartUploads,
# AbortMultipartUpload on Swift's s3api), by prefix and by age.
t_list_and_abort_uploads() {
        local key
        for key in lu/one/ lu/two/; do
                rm -f "$T_TMP/proxy.port"*
                start_proxy --cut-after $((12 * 1024 * 1024)) || return 1
                assert_exit 1 kiln_s3 "$KILN" publish "${MP[@]}" --set retries=0 --set endpoint="$PROXY_EP" \
                        --to "s3://$BUCKET/$key" "$BIG" || { stop_proxy; return 1; }
                stop_proxy
        done
        local theirs
        theirs=$(s3cmd_uploads | grep "/lu/" | sort)
        [ "$(wc -l <<<"$theirs")" = 2 ] || t_fail "s3cmd sees: $theirs" || return 1
        assert_exit 0 kiln_s3 "$KILN_SAN" publish --list-uploads "s3://$BUCKET/lu/" || return 1
        assert_eq "$(sed "s|^s3://$BUCKET/||" <<<"$theirs")" \
                "$(awk '{ print $1, $2 }' "$T_OUT" | sort)" "kiln's list = s3cmd's" || return 1
        assert_exit 0 kiln_s3 "$KILN" publish --json --list-uploads "s3://$BUCKET/lu/one" || return 1
        python3 -c 'import json,sys; u=json.load(open(sys.argv[1]))["uploads"]; assert [x["key"] for x in u] == ["lu/one/big.raw"], u; assert u[0]["initiated"]' \
                "$T_OUT" || t_fail "JSON listing" || return 1
        # Not older than a day: nothing listed, nothing aborted.
        assert_exit 0 kiln_s3 "$KILN" publish --json --abort-uploads "s3://$BUCKET/lu/" --older-than 1d || return 1
        assert_eq 0 "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["aborted"])' "$T_OUT")" || return 1
        [ "$(s3cmd_uploads | grep -c /lu/)" = 2 ] || t_fail "--older-than aborted an upload" || return 1
        # By prefix: only lu/one's.
        assert_exit 0 kiln_s3 "$KILN_SAN" publish --abort-uploads "s3://$BUCKET/lu/one/" || return 1
        assert_contains "$(<"$T_OUT")" "aborted  lu/one/big.raw" || return 1
        assert_eq "s3://$BUCKET/lu/two/big.raw" "$(s3cmd_uploads | grep /lu/ | cut -d' ' -f1)" || return 1
        assert_exit 0 kiln_s3 "$KILN" publish --json --abort-uploads "s3://$BUCKET/lu/" || return 1
        assert_eq 1 "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["aborted"])' "$T_OUT")" || return 1
        assert_eq "" "$(s3cmd_uploads | grep /lu/)" "uploads left" || return 1
        # A server that refuses: exit 1, a JSON document with the error.
        assert_exit 1 env AWS_ACCESS_KEY_ID="$KILN_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY=wrong-secret-99 \
                AWS_ENDPOINT_URL="$KILN_S3_ENDPOINT" "$KILN" publish --json --list-uploads "s3://$BUCKET" || return 1
        assert_contains "$(json_error "$T_OUT")" "the secret key is wrong" || return 1
}

run_test s3_help t_help
run_test s3_invalid_publish_section t_invalid_publish_section
run_test s3_wrong_secret t_wrong_secret
run_test s3_credentials_file t_credentials_file
run_test s3_multipart_readback t_multipart_readback
run_test s3_cut_then_resume t_cut_then_resume
run_test s3_cut_retried_in_run t_cut_retried_in_run
run_test s3_flipped_byte_detected t_flipped_byte_detected
run_test s3_image_publish_and_skip t_image_publish_and_skip
run_test s3_not_a_regular_file t_not_a_regular_file
run_test s3_key_rules t_key_rules
run_test s3_overwritten_out_of_band t_overwritten_out_of_band
run_test s3_progress t_progress
run_test s3_list_and_abort_uploads t_list_and_abort_uploads

# images_count STORE — how many entries `kiln images list` shows.
images_count() {
        "$KILN" images list --store "$1" --json | python3 -c '
import json,sys; v=json.load(sys.stdin); v=v if isinstance(v, list) else v["images"]; print(len(v))'
}

# kiln build delivers: a build whose checks pass lands in the image store and
# is published; one whose check fails is neither stored nor published.
t_build_stores_and_publishes() {
        e2e_minimal_build || return 1
        local spec=$T_TMP/kiln.yaml store=$T_TMP/store want
        cp examples/minimal/kiln.yaml "$spec"
        printf '%s\n' "    publish:" "      - type: s3" "        bucket: $BUCKET" \
                "        key: build/\${build.name}.qcow2" "        format: qcow2" >>"$spec"
        kb() {
                KILN_CACHE_DIR=$E2E_MIN_CACHE kiln_s3 "$KILN" build --work-dir "$E2E_MIN_WORK" \
                        --output-dir "$E2E_MIN_OUT" --store "$store" "$@"
        }
        assert_exit 0 kb "$spec" || return 1
        assert_contains "$(<"$T_OUT")" "store      minimal:" || return 1
        assert_contains "$(<"$T_OUT")" "publish    uploaded minimal.qcow2" || return 1
        want=$(sha256sum "$E2E_MIN_OUT/minimal/minimal.qcow2" | cut -d' ' -f1)
        assert_eq "$want" "$(remote_sha build/minimal.qcow2)" "published bytes" || return 1
        exists build/minimal.qcow2.sha256 || t_fail "no sidecar" || return 1
        assert_eq "2" "$(images_count "$store")" "store entries (raw, qcow2)" || return 1
        # Nothing changed: stored once, nothing sent.
        assert_exit 0 kb "$spec" || return 1
        assert_contains "$(<"$T_OUT")" "publish    skipped-identical minimal.qcow2" || return 1
        assert_eq "2" "$(images_count "$store")" "store entries after a rebuild" || return 1
        # A failing check: exit 1, nothing stored or published under the new key.
        sed -i 's|key: build/|key: failed/|; s|^      - service: ssh$|&\n      - file: /etc/kiln-no-such-file|' "$spec"
        rm -rf "$store"
        assert_exit 1 kb "$spec" || return 1
        assert_contains "$(<"$T_ERR")" "/etc/kiln-no-such-file" || return 1
        ! exists failed/minimal.qcow2 || t_fail "a build that failed its checks was published" || return 1
        [ ! -e "$store/catalog.db" ] || assert_eq "0" "$(images_count "$store")" "stored after a failed check" ||
                return 1
        # --no-publish, --no-store: neither happens.
        sed -i '/kiln-no-such-file/d' "$spec"
        assert_exit 0 kb --no-publish --no-store "$spec" || return 1
        assert_not_contains "$(<"$T_OUT")" "publish " || return 1
        assert_not_contains "$(<"$T_OUT")" "store " || return 1
        ! exists failed/minimal.qcow2 || t_fail "published despite --no-publish" || return 1
}
run_test s3_build_stores_and_publishes t_build_stores_and_publishes

e2e_summary
