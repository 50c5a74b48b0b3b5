#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The GCS publisher (type: gcs) against tests/servers/fake-gcs.py, a FAKE of
# Google Cloud Storage's JSON API and OAuth2 token endpoint on 127.0.0.1 (no
# real server can run here): it verifies the JWT's RS256 signature against
# the public half of a throwaway key made below, the bearer token of every
# call and the resumable-upload protocol, and injects faults on request.
# The fake keeps objects as files, so uploads are compared byte for byte.
. "$(dirname "$0")/lib.sh"

GCS_DIR=$(mktemp -d /var/tmp/kiln-e2e-gcs.XXXXXX) || exit 1
FAKE_PID=""
trap '[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; rm -rf "$GCS_DIR" "${E2E_CLEANUP[@]}"' EXIT
PY=$(command -v python3) || { echo "FAIL python3"; echo "0 passed, 1 failed"; exit 1; }
BUCKET=kiln-e2e
EMAIL=kiln-publisher@kiln-e2e.iam.gserviceaccount.com
DATA=$GCS_DIR/data

# A throwaway RSA key: the private half goes into a service-account key
# file, the public half to the fake.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$GCS_DIR/key.pem" 2>/dev/null &&
        openssl pkey -in "$GCS_DIR/key.pem" -pubout -out "$GCS_DIR/pub.pem" ||
        { echo "FAIL keygen"; echo "0 passed, 1 failed"; exit 1; }

"$PY" tests/servers/fake-gcs.py --port-file "$GCS_DIR/port" --data-dir "$DATA" \
        --public-key "$GCS_DIR/pub.pem" --client-email "$EMAIL" --bucket "$BUCKET" \
        2>"$GCS_DIR/fake.log" &
FAKE_PID=$!
deadline=$((SECONDS + 20))
until [ -s "$GCS_DIR/port" ]; do
        if ! kill -0 "$FAKE_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
                cat "$GCS_DIR/fake.log"
                echo "FAIL fake_gcs_server"
                echo "0 passed, 1 failed"
                exit 1
        fi
        sleep 0.05
done
EP=http://127.0.0.1:$(cat "$GCS_DIR/port")

# key_file PEM OUT — a service-account key file as Google writes one, whose
# token_uri is the fake's.
key_file() {
        "$PY" - "$1" "$2" "$EMAIL" "$EP/token" <<'PY'
import json, sys
pem, out, email, uri = sys.argv[1:]
json.dump({"type": "service_account", "project_id": "kiln-e2e", "private_key_id": "0123abcd",
           "private_key": open(pem).read(), "client_email": email, "client_id": "1",
           "auth_uri": uri, "token_uri": uri}, open(out, "w"), indent=2)
PY
}
KEY=$GCS_DIR/key.json
key_file "$GCS_DIR/key.pem" "$KEY"
# A line from the middle of the private key: must never be printed.
KEY_LINE=$(sed -n 5p "$GCS_DIR/key.pem")

# kiln_gcs CMD... — CMD with the key file as the only Google credentials.
kiln_gcs() {
        env -u GOOGLE_OAUTH_ACCESS_TOKEN -u GCE_METADATA_HOST GOOGLE_APPLICATION_CREDENTIALS="$KEY" "$@"
}
GS=(--set "endpoint=$EP" --set chunk_size=256KiB)

fault() { curl -fsS -o /dev/null -X POST --data "$1" "$EP/_fake/fault"; }
stat_of() { # KEY — a counter of the fake
        curl -fsS "$EP/_fake/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
issued_tokens() { curl -fsS "$EP/_fake/stats" | "$PY" -c 'import json,sys; print("\n".join(json.load(sys.stdin)["issued"]))'; }
json_field() { # FILE FIELD — first result's FIELD in kiln's JSON
        "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0][sys.argv[2]])' "$1" "$2"
}
# obj NAME — the fake's file holding object NAME; meta NAME — its resource.
obj() { echo "$DATA/$BUCKET/$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1")"; }
meta_sha() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("metadata", {}).get("sha256"))' "$(obj "$1").json"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# make_output DIR NAME — a small image folder the cheap way: a sparse raw
# disk with random data at both ends, its qcow2 by qemu-img, and a
# kiln-manifest.json naming both.
make_output() {
        local dir=$1/$2 name=$2
        mkdir -p "$dir"
        head -c 700000 /dev/urandom >"$dir/$name.raw"
        truncate -s 3M "$dir/$name.raw"
        head -c 300000 /dev/urandom | dd of="$dir/$name.raw" bs=1k seek=2048 conv=notrunc 2>/dev/null
        qemu-img convert -f raw -O qcow2 "$dir/$name.raw" "$dir/$name.qcow2" || return 1
        cat >"$dir/kiln-manifest.json" <<EOF
{
  "schema_version": 1, "name": "$name", "id": "$name", "arch": "x86_64", "role": null,
  "labels": {"os": "debian"},
  "artifacts": [
    {"file": "$name.raw", "format": "raw", "size": $(stat -c %s "$dir/$name.raw"), "sha256": "$(sha "$dir/$name.raw")", "sha512": null},
    {"file": "$name.qcow2", "format": "qcow2", "size": $(stat -c %s "$dir/$name.qcow2"), "sha256": "$(sha "$dir/$name.qcow2")", "sha512": null}
  ]
}
EOF
}

t_image_publish_and_skip() {
        make_output "$T_TMP/out" m || return 1
        cat >"$T_TMP/kiln.yaml" <<EOF
builds:
  m:
    source: {type: debian, suite: bookworm}
    publish:
      - type: gcs
        name: fake-gcs
        bucket: $BUCKET
        object: ci/\${build.name}.qcow2
        format: qcow2
        endpoint: $EP
        key_file: $KEY
        chunk_size: 256KiB
EOF
        local q=$T_TMP/out/m/m.qcow2 jwt0
        jwt0=$(stat_of jwt_verified)
        assert_exit 0 env -u GOOGLE_APPLICATION_CREDENTIALS -u GOOGLE_OAUTH_ACCESS_TOKEN \
                "$KILN_SAN" publish --json "$T_TMP/kiln.yaml" --output-dir "$T_TMP/out" || return 1
        assert_eq uploaded "$(json_field "$T_OUT" status)" || return 1
        assert_eq fake-gcs "$(json_field "$T_OUT" target)" || return 1
        assert_eq "gs://$BUCKET/ci/m.qcow2" "$(json_field "$T_OUT" location)" || return 1
        assert_eq "$(stat -c %s "$q")" "$(json_field "$T_OUT" bytes_sent)" "bytes_sent" || return 1
        cmp "$q" "$(obj ci/m.qcow2)" || t_fail "the stored object differs from the qcow2" || return 1
        assert_eq "$(sha "$q")" "$(meta_sha ci/m.qcow2)" "metadata.sha256" || return 1
        assert_eq "$(sha "$q")  m.qcow2" "$(cat "$(obj ci/m.qcow2.sha256)")" "sidecar" || return 1
        (cd "$T_TMP/out/m" && sha256sum -c "$(obj ci/m.qcow2.sha256)" >/dev/null) ||
                t_fail "sha256sum -c rejects the sidecar" || return 1
        [ "$(stat_of jwt_verified)" -gt "$jwt0" ] || t_fail "no signed JWT was verified" || return 1
        # Again: nothing is sent.
        assert_exit 0 "$KILN" publish "$T_TMP/kiln.yaml" --output-dir "$T_TMP/out" || return 1
        assert_contains "$(<"$T_OUT")" "skipped-identical" || return 1
        assert_exit 0 "$KILN" publish --json "$T_TMP/kiln.yaml" --output-dir "$T_TMP/out" || return 1
        assert_eq skipped-identical "$(json_field "$T_OUT" status)" || return 1
        assert_eq 0 "$(json_field "$T_OUT" bytes_sent)" "bytes sent when identical" || return 1
        # A lost sidecar is written again, still without sending the image.
        rm -f "$(obj ci/m.qcow2.sha256)" "$(obj ci/m.qcow2.sha256).json"
        assert_exit 0 "$KILN" publish --json "$T_TMP/kiln.yaml" --output-dir "$T_TMP/out" || return 1
        assert_eq skipped-identical "$(json_field "$T_OUT" status)" || return 1
        assert_eq "$(sha "$q")  m.qcow2" "$(cat "$(obj ci/m.qcow2.sha256)")" "sidecar rewritten" || return 1
}

# An object replaced behind kiln's back by one of the same size is not
# "identical": its own recorded sha256 is missing or different.
t_overwritten_out_of_band() {
        head -c 600000 /dev/urandom >"$T_TMP/a.raw"
        head -c 600000 /dev/urandom >"$T_TMP/b.raw"
        local o
        o=$(obj oob/a.raw)
        assert_exit 0 kiln_gcs "$KILN" publish "${GS[@]}" --to "gs://$BUCKET/oob/a.raw" "$T_TMP/a.raw" || return 1
        cmp "$T_TMP/a.raw" "$o" || return 1
        # Replaced without metadata (the sidecar stays, naming a's sha256) ...
        cp "$T_TMP/b.raw" "$o"
        "$PY" -c 'import json,sys; p=sys.argv[1]; m=json.load(open(p)); m.pop("metadata"); json.dump(m, open(p, "w"))' "$o.json"
        assert_exit 0 kiln_gcs "$KILN" publish --json "${GS[@]}" --to "gs://$BUCKET/oob/a.raw" "$T_TMP/a.raw" || return 1
        assert_eq uploaded "$(json_field "$T_OUT" status)" "after an overwrite without metadata" || return 1
        cmp "$T_TMP/a.raw" "$o" || t_fail "not uploaded again" || return 1
        # ... and with another recorded sha256.
        cp "$T_TMP/b.raw" "$o"
        "$PY" -c 'import json,sys; p=sys.argv[1]; m=json.load(open(p)); m["metadata"]={"sha256": sys.argv[2]}; json.dump(m, open(p, "w"))' \
                "$o.json" "$(sha "$T_TMP/b.raw")"
        assert_exit 0 kiln_gcs "$KILN" publish --json "${GS[@]}" --to "gs://$BUCKET/oob/a.raw" "$T_TMP/a.raw" || return 1
        assert_eq uploaded "$(json_field "$T_OUT" status)" "after an overwrite with another sha256" || return 1
        cmp "$T_TMP/a.raw" "$o" || t_fail "not uploaded again" || return 1
        assert_exit 0 kiln_gcs "$KILN" publish --json "${GS[@]}" --to "gs://$BUCKET/oob/a.raw" "$T_TMP/a.raw" || return 1
        assert_eq skipped-identical "$(json_field "$T_OUT" status)" || return 1
}

# A connection cut in the middle of a chunk: kiln asks the session what it
# kept and goes on from there; at most one chunk is sent twice.
t_resume_after_cut() {
        head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$T_TMP/big.raw"
        local size fired q0 chunk=$((1024 * 1024))
        size=$(stat -c %s "$T_TMP/big.raw")
        fired=$(stat_of faults_fired) q0=$(stat_of status_queries)
        fault cut=600000 || return 1
        assert_exit 0 kiln_gcs "$KILN_SAN" publish --json --set "endpoint=$EP" --set chunk_size=1MiB \
                --to "gs://$BUCKET/cut/" "$T_TMP/big.raw" || return 1
        [ "$(stat_of faults_fired)" -gt "$fired" ] || t_fail "the cut never happened" || return 1
        [ "$(stat_of status_queries)" -gt "$q0" ] || t_fail "the session was never asked" || return 1
        assert_eq uploaded "$(json_field "$T_OUT" status)" || return 1
        cmp "$T_TMP/big.raw" "$(obj cut/big.raw)" || t_fail "stored object differs" || return 1
        assert_eq "$size" "$(json_field "$T_OUT" bytes_sent)" "bytes_sent: each byte once" || return 1
        local re
        re=$(json_field "$T_OUT" bytes_retried)
        [ "$re" -gt 0 ] && [ "$re" -le "$chunk" ] ||
                t_fail "bytes re-sent: $re (expected 1 to one chunk, $chunk)" || return 1
}

# 503 and 429 answers are retried with backoff; a revoked token is replaced.
t_retry_and_refresh() {
        head -c 900000 /dev/urandom >"$T_TMP/r.raw"
        local code fired tok0
        for code in 503 429; do
                fired=$(stat_of faults_fired)
                fault "status=$code" || return 1
                assert_exit 0 kiln_gcs "$KILN" publish --json "${GS[@]}" --to "gs://$BUCKET/retry-$code/" \
                        "$T_TMP/r.raw" || return 1
                [ "$(stat_of faults_fired)" -gt "$fired" ] || t_fail "no $code was answered" || return 1
                assert_eq uploaded "$(json_field "$T_OUT" status)" || return 1
                cmp "$T_TMP/r.raw" "$(obj "retry-$code/r.raw")" || return 1
        done
        tok0=$(stat_of tokens_issued)
        fault revoke=1 || return 1
        assert_exit 0 kiln_gcs "$KILN" publish --json "${GS[@]}" --to "gs://$BUCKET/revoked/" "$T_TMP/r.raw" || return 1
        assert_eq 1 "$(stat_of revoked)" "tokens revoked" || return 1
        assert_eq $((tok0 + 2)) "$(stat_of tokens_issued)" "a second token after the 401" || return 1
        cmp "$T_TMP/r.raw" "$(obj revoked/r.raw)" || return 1
        # retries: 0 — a 503 is then the end, with the reason.
        fault status=503 || return 1
        assert_exit 1 kiln_gcs "$KILN" publish "${GS[@]}" --set retries=0 --to "gs://$BUCKET/noretry/" \
                "$T_TMP/r.raw" || return 1
        assert_contains "$(<"$T_OUT")" "HTTP 503" || return 1
        [ ! -e "$(obj noretry/r.raw.sha256)" ] || t_fail "a sidecar after a failed upload" || return 1
        # A bucket that does not exist: said so, nothing retried for long.
        assert_exit 1 kiln_gcs "$KILN" publish "${GS[@]}" --to "gs://no-such-bucket/x/" "$T_TMP/r.raw" || return 1
        assert_contains "$(<"$T_OUT")" "the bucket 'no-such-bucket' does not exist" || return 1
}

# A key the service account does not have: the token endpoint refuses the
# signature; the message names the target and says what to fix.
t_wrong_key() {
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_TMP/other.pem" 2>/dev/null || return 1
        key_file "$T_TMP/other.pem" "$T_TMP/other.json"
        head -c 1000 /dev/urandom >"$T_TMP/w.raw"
        local refused
        refused=$(stat_of jwt_refused)
        assert_exit 1 env -u GOOGLE_OAUTH_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS="$T_TMP/other.json" \
                "$KILN" publish "${GS[@]}" --to "gs://$BUCKET/wrong/" "$T_TMP/w.raw" || return 1
        [ "$(stat_of jwt_refused)" -gt "$refused" ] || t_fail "the fake saw no JWT" || return 1
        local out
        out=$(<"$T_OUT")
        assert_contains "$out" "failed" || return 1
        assert_contains "$out" "gs://$BUCKET/wrong/" || return 1
        assert_contains "$out" "service account $EMAIL" || return 1
        assert_contains "$out" "Invalid JWT Signature" || return 1
        assert_contains "$out" "current key of this service account" || return 1
        [ ! -e "$(obj wrong/w.raw)" ] || t_fail "an object was written" || return 1
        # Not a key file at all; no credentials at all.
        echo '{"type": "authorized_user"}' >"$T_TMP/user.json"
        assert_exit 1 env -u GOOGLE_OAUTH_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS="$T_TMP/user.json" \
                "$KILN" publish "${GS[@]}" --to "gs://$BUCKET/wrong/" "$T_TMP/w.raw" || return 1
        assert_contains "$(<"$T_OUT")" "not a service-account key" || return 1
        assert_exit 1 env -u GOOGLE_OAUTH_ACCESS_TOKEN -u GOOGLE_APPLICATION_CREDENTIALS -u GCE_METADATA_HOST \
                "$KILN" publish "${GS[@]}" --to "gs://$BUCKET/wrong/" "$T_TMP/w.raw" || return 1
        assert_contains "$(<"$T_OUT")" "no Google credentials" || return 1
}

# An access token from the environment, and the metadata server only when
# the target asks for it, at GCE_METADATA_HOST (there is no default).
t_token_and_metadata() {
        head -c 5000 /dev/urandom >"$T_TMP/t.raw"
        local tok m0
        tok=$(curl -fsS -H 'Metadata-Flavor: Google' \
                "$EP/computeMetadata/v1/instance/service-accounts/default/token" |
                "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') || return 1
        assert_exit 0 env -u GOOGLE_APPLICATION_CREDENTIALS GOOGLE_OAUTH_ACCESS_TOKEN="$tok" \
                "$KILN" -v publish "${GS[@]}" --to "gs://$BUCKET/env/" "$T_TMP/t.raw" || return 1
        cmp "$T_TMP/t.raw" "$(obj env/t.raw)" || return 1
        assert_contains "$(<"$T_ERR")" "Authorization: <sensitive>" || return 1
        assert_not_contains "$(<"$T_OUT")$(<"$T_ERR")" "$tok" || return 1
        assert_exit 1 env -u GOOGLE_APPLICATION_CREDENTIALS GOOGLE_OAUTH_ACCESS_TOKEN=ya29.not-a-token-4711 \
                "$KILN" publish "${GS[@]}" --to "gs://$BUCKET/env2/" "$T_TMP/t.raw" || return 1
        assert_contains "$(<"$T_OUT")" "refused the access token in GOOGLE_OAUTH_ACCESS_TOKEN" || return 1
        assert_not_contains "$(<"$T_OUT")$(<"$T_ERR")" "not-a-token-4711" || return 1
        # auth: metadata without GCE_METADATA_HOST: refused before any request.
        m0=$(stat_of metadata_tokens)
        assert_exit 1 env -u GOOGLE_APPLICATION_CREDENTIALS -u GOOGLE_OAUTH_ACCESS_TOKEN -u GCE_METADATA_HOST \
                "$KILN" publish "${GS[@]}" --set auth=metadata --to "gs://$BUCKET/md/" "$T_TMP/t.raw" || return 1
        assert_contains "$(<"$T_OUT")" "GCE_METADATA_HOST" || return 1
        # Without auth: metadata, GCE_METADATA_HOST alone is not used.
        assert_exit 1 env -u GOOGLE_APPLICATION_CREDENTIALS -u GOOGLE_OAUTH_ACCESS_TOKEN \
                GCE_METADATA_HOST="${EP#http://}" \
                "$KILN" publish "${GS[@]}" --to "gs://$BUCKET/md/" "$T_TMP/t.raw" || return 1
        assert_eq "$m0" "$(stat_of metadata_tokens)" "metadata server contacted unasked" || return 1
        assert_exit 0 env -u GOOGLE_APPLICATION_CREDENTIALS -u GOOGLE_OAUTH_ACCESS_TOKEN \
                GCE_METADATA_HOST="${EP#http://}" \
                "$KILN" publish "${GS[@]}" --set auth=metadata --to "gs://$BUCKET/md/" "$T_TMP/t.raw" || return 1
        [ "$(stat_of metadata_tokens)" -gt "$m0" ] || t_fail "no token from the metadata server" || return 1
        cmp "$T_TMP/t.raw" "$(obj md/t.raw)" || return 1
}

# The private key and the tokens never show: not on stdout or stderr (even
# with -v), not in --json, not in the output folder, not in any process's
# arguments while kiln runs.
t_secrets() {
        make_output "$T_TMP/out" s || return 1
        printf 'builds:\n  s:\n    source: {type: debian, suite: bookworm}\n    publish: {type: gcs, bucket: %s, object: sec/, endpoint: "%s", key_file: "%s", chunk_size: 256KiB}\n' \
                "$BUCKET" "$EP" "$KEY" >"$T_TMP/s.yaml"
        # a 503 makes kiln wait (backoff) while ps looks
        fault status=503 || return 1
        env -u GOOGLE_OAUTH_ACCESS_TOKEN "$KILN" -v publish --json "$T_TMP/s.yaml" --output-dir "$T_TMP/out" \
                >"$T_TMP/o" 2>"$T_TMP/e" &
        local pid=$! tok
        while kill -0 "$pid" 2>/dev/null; do
                ps -eo args >>"$T_TMP/ps" 2>/dev/null
                cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' >>"$T_TMP/ps"
        done
        wait "$pid" || t_fail "publish failed: $(cat "$T_TMP/o" "$T_TMP/e")" || return 1
        assert_eq uploaded "$(json_field "$T_TMP/o" status)" || return 1
        grep -q 'Authorization: <sensitive>' "$T_TMP/e" || t_fail "-v logged no requests" || return 1
        # One more, wrongly keyed, for a failure's message.
        key_file "$GCS_DIR/pub.pem" "$T_TMP/bad.json"
        env -u GOOGLE_OAUTH_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS="$T_TMP/bad.json" "$KILN" -v publish --json \
                "${GS[@]}" --to "gs://$BUCKET/sec2/" "$T_TMP/out/s/s.raw" >>"$T_TMP/o" 2>>"$T_TMP/e"
        local where
        for where in "$T_TMP/o" "$T_TMP/e" "$T_TMP/ps" "$T_TMP/out/s/kiln-manifest.json"; do
                grep -qF -- "$KEY_LINE" "$where" && { t_fail "private key in $where"; return 1; }
                while read -r tok; do
                        [ -z "$tok" ] || ! grep -qF -- "$tok" "$where" ||
                                { t_fail "a token in $where"; return 1; }
                done < <(issued_tokens)
        done
        [ "$(issued_tokens | wc -l)" -gt 0 ] || t_fail "no tokens were issued" || return 1
        grep -q '"error"' "$T_TMP/o" || t_fail "no --json document" || return 1
}

t_invalid_publish_section() {
        cat >"$T_TMP/bad.yaml" <<'EOF'
builds:
  x:
    source: {type: debian, suite: bookworm}
    publish:
      - type: gcs
        bucket: Not_A_Bucket
        chunk_size: 300KiB
        auth: metdata
        chunk_sise: 1MiB
      - {type: gcs, bucket: ok-bucket, object: "a\nb", endpoint: "ftp://x"}
EOF
        assert_exit 2 "$KILN" validate "$T_TMP/bad.yaml" || return 1
        local e
        e=$(<"$T_ERR")
        assert_contains "$e" "bad.yaml:6:17: error: publish target 'gcs': bucket: 'Not_A_Bucket' is not a valid bucket name" || return 1
        assert_contains "$e" "bad.yaml:7:21: error: publish target 'gcs': chunk_size: must be a multiple of 256KiB" || return 1
        assert_contains "$e" "bad.yaml:8:15:" || return 1
        assert_contains "$e" "metadata" || return 1
        assert_contains "$e" "bad.yaml:9:9:" || return 1
        assert_contains "$e" "did you mean 'chunk_size'" || return 1
        assert_contains "$e" "object: GCS refuses names with CR or LF" || return 1
        assert_contains "$e" "endpoint: 'ftp://x' is not http(s)://host[:port]" || return 1
        # --to gs://: checked the same way.
        head -c 10 /dev/urandom >"$T_TMP/x.raw"
        assert_exit 2 "$KILN" publish --set chunk_size=1000 --to gs://Bad_Bucket/x "$T_TMP/x.raw" || return 1
        assert_contains "$(<"$T_ERR")" "not a valid bucket name" || return 1
        assert_exit 2 "$KILN" publish --list-uploads "gs://$BUCKET" || return 1
        assert_contains "$(<"$T_ERR")" "gcs targets have no unfinished uploads" || return 1
}

run_test gcs_invalid_publish_section t_invalid_publish_section
run_test gcs_image_publish_and_skip t_image_publish_and_skip
run_test gcs_overwritten_out_of_band t_overwritten_out_of_band
run_test gcs_resume_after_cut t_resume_after_cut
run_test gcs_retry_and_refresh t_retry_and_refresh
run_test gcs_wrong_key t_wrong_key
run_test gcs_token_and_metadata t_token_and_metadata
run_test gcs_secrets t_secrets

e2e_summary
