#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of the Glance publisher against a real glance-api
# (Debian's package) started on 127.0.0.1 by tests/servers/glance.sh: the
# minimal example's qcow2 published with both upload methods, checked by
# asking Glance (status, os_hash_value, bytes, tags, properties), a second
# publish that sends nothing, a deadline that deletes an unfinished image,
# and the errors for a wrong endpoint and missing or wrong credentials;
# then a real Keystone (tests/servers/keystone.sh) with a second Glance that
# checks its tokens: password auth through the catalog, an application
# credential, a static token, a wrong password. Needs root (the minimal
# build).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_glance: needs root"
        echo "0 passed, 1 failed"
        exit 1
fi
command -v glance-api >/dev/null || { echo "FAIL glance-api not installed (scripts/install-deps.sh)"; echo "0 passed, 1 failed"; exit 1; }

e2e_minimal_build || { echo "FAIL minimal-build"; echo "0 passed, 1 failed"; exit 1; }
QCOW2=$E2E_MIN_OUT/minimal/minimal.qcow2
SHA512=$(sha512sum "$QCOW2" | cut -d' ' -f1)

GSRV=$(mktemp -d /var/tmp/kiln-e2e-glance.XXXXXX)
# One EXIT trap: stop the server (which removes its dir), then lib.sh's
# cleanups (paths given to e2e_cleanup_add).
glance_cleanup() {
        bash tests/servers/glance.sh stop "$GSRV/srv" >/dev/null 2>&1
        bash tests/servers/glance.sh stop "$GSRV/ksglance" >/dev/null 2>&1
        bash tests/servers/keystone.sh stop "$GSRV/keystone" >/dev/null 2>&1
        rm -rf "$GSRV" "${E2E_CLEANUP[@]}"
}
trap glance_cleanup EXIT
bash tests/servers/glance.sh start "$GSRV/srv" || { echo "FAIL glance-server-start"; echo "0 passed, 1 failed"; exit 1; }
eval "$(bash tests/servers/glance.sh env "$GSRV/srv")"
export KILN_GLANCE_HEADERS

# gcurl ARGS... — curl with the server's identity headers.
gcurl() {
        local h=() IFS=';'
        for x in $KILN_GLANCE_HEADERS; do h+=(-H "$x"); done
        curl -fsS "${h[@]}" "$@"
}
# images_named NAME — "ID STATUS" per image of that name.
images_named() {
        gcurl "$GLANCE_ENDPOINT/v2/images?name=$1" |
                python3 -c 'import json,sys; [print(i["id"], i["status"]) for i in json.load(sys.stdin)["images"]]'
}
# image_field ID FIELD — one field of an image as JSON text.
image_field() {
        gcurl "$GLANCE_ENDPOINT/v2/images/$1" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get(sys.argv[1])))' "$2"
}
# requests PATTERN — how many requests matching PATTERN the server logged.
requests() { grep -c "\"$1" "$GLANCE_LOG" || true; }

# write_spec FILE IMAGE_NAME [SETTING...] — the minimal example with one
# glance target (name: glance-e2e) added to its build; each SETTING is one
# "key: value" line of the target.
write_spec() {
        local file=$1 name=$2
        shift 2
        {
                cat examples/minimal/kiln.yaml
                echo "    publish:"
                echo "      - type: glance"
                echo "        name: glance-e2e"
                echo "        endpoint: $GLANCE_ENDPOINT"
                echo "        image_name: $name"
                echo "        disk_format: qcow2"
                for s in "$@"; do echo "        $s"; done
        } >"$file"
}

kpub() { "$KILN" publish --output-dir "$E2E_MIN_OUT" "$@"; }

# check_image ID — active, size and os_hash_value of the local qcow2, and
# GET .../file gives back the same bytes.
check_image() {
        local id=$1
        assert_eq '"active"' "$(image_field "$id" status)" "status" || return 1
        assert_eq '"sha512"' "$(image_field "$id" os_hash_algo)" "os_hash_algo" || return 1
        assert_eq "\"$SHA512\"" "$(image_field "$id" os_hash_value)" "os_hash_value" || return 1
        assert_eq "$(stat -c %s "$QCOW2")" "$(image_field "$id" size)" "size" || return 1
        gcurl -o "$GSRV/download" "$GLANCE_ENDPOINT/v2/images/$id/file" || return 1
        assert_exit 0 cmp "$QCOW2" "$GSRV/download" || return 1
        rm -f "$GSRV/download"
}

t_direct() {
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-direct "tags: [kiln, e2e]" "os_distro: debian" \
                "os_version: \"12\"" "hw_firmware_type: uefi" "properties: {kiln_role: compute}"
        local t0 t1
        t0=$(date +%s%N)
        assert_exit 0 kpub "$T_TMP/kiln.yaml" || return 1
        t1=$(date +%s%N)
        echo "direct upload of $(stat -c %s "$QCOW2") bytes: $(((t1 - t0) / 1000000)) ms (kiln publish, end to end)" >&2
        assert_contains "$(cat "$T_OUT")" "uploaded" || return 1
        assert_contains "$(cat "$T_OUT")" "minimal -> glance-e2e  minimal.qcow2" || return 1
        local lines id status
        lines=$(images_named kiln-e2e-direct)
        assert_eq 1 "$(echo "$lines" | wc -l)" "one image of that name" || return 1
        read -r id status <<<"$lines"
        assert_contains "$(cat "$T_OUT")" "$GLANCE_ENDPOINT/v2/images/$id" || return 1
        check_image "$id" || return 1
        assert_eq '["e2e", "kiln"]' "$(gcurl "$GLANCE_ENDPOINT/v2/images/$id" | python3 -c 'import json,sys; print(json.dumps(sorted(json.load(sys.stdin)["tags"])))')" "tags" || return 1
        assert_eq '"debian" "12" "uefi" "x86_64" "compute" "qcow2" "bare"' \
                "$(for f in os_distro os_version hw_firmware_type architecture kiln_role disk_format container_format; do image_field "$id" $f; done | tr '\n' ' ' | sed 's/ $//')" "properties" || return 1
        assert_eq 1 "$(requests "PUT /v2/images/$id/file")" "one data PUT" || return 1
        echo "$id" >"$GSRV/direct.id"
        # the time glance-api logged for the data PUT
        grep "\"PUT /v2/images/$id/file" "$GLANCE_LOG" | awk '{print "glance-api PUT /file took " $NF " s"}' >&2
}
run_test publish-direct t_direct

t_republish_skips() {
        local id puts
        id=$(cat "$GSRV/direct.id") || return 1
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-direct "tags: [kiln, e2e]" "os_distro: debian" \
                "os_version: \"12\"" "hw_firmware_type: uefi" "properties: {kiln_role: compute}"
        puts=$(requests "PUT ")
        assert_exit 0 kpub "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "skipped-identical" || return 1
        assert_contains "$(cat "$T_OUT")" "$GLANCE_ENDPOINT/v2/images/$id  0 B sent" || return 1
        assert_eq "$puts" "$(requests "PUT ")" "no PUT reached the server" || return 1
        assert_eq "$id active" "$(images_named kiln-e2e-direct)" "still one image" || return 1
}
run_test republish-skips-identical t_republish_skips

# The headers go in the target's headers: map here (not KILN_GLANCE_HEADERS).
t_glance_direct() {
        local map="headers: {" x IFS=';'
        for x in $KILN_GLANCE_HEADERS; do map+="\"${x%%:*}\": \"${x#*: }\", "; done
        unset IFS
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-import "method: glance-direct" "import_timeout: 5m" \
                "tags: [imported]" "${map%, }}"
        local t0 t1
        t0=$(date +%s%N)
        assert_exit 0 env -u KILN_GLANCE_HEADERS "$KILN" publish --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        t1=$(date +%s%N)
        echo "glance-direct (stage + import + wait) of $(stat -c %s "$QCOW2") bytes: $(((t1 - t0) / 1000000)) ms" >&2
        assert_contains "$(cat "$T_OUT")" "uploaded" || return 1
        local id status
        read -r id status <<<"$(images_named kiln-e2e-import)"
        [ -n "$id" ] || { echo "no image kiln-e2e-import"; return 1; }
        check_image "$id" || return 1
        assert_eq 1 "$(requests "PUT /v2/images/$id/stage")" "staged once" || return 1
        assert_eq 1 "$(requests "POST /v2/images/$id/import")" "imported once" || return 1
        assert_eq 0 "$(requests "PUT /v2/images/$id/file")" "no direct upload" || return 1
        # and again: nothing is sent
        assert_exit 0 env -u KILN_GLANCE_HEADERS "$KILN" publish --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "skipped-identical" || return 1
        assert_eq 1 "$(requests "PUT /v2/images/$id/stage")" "not staged again" || return 1
}
run_test publish-glance-direct t_glance_direct

t_import_deadline_deletes() {
        # A deadline of 0 s passes at the first look at the image, while
        # Glance is still importing: kiln must fail and delete the image.
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-deadline "method: glance-direct" "import_timeout: 0s"
        assert_exit 1 kpub "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "the import did not finish within 0 s" || return 1
        assert_contains "$(cat "$T_OUT")" "was deleted" || return 1
        assert_eq "" "$(images_named kiln-e2e-deadline)" "no image left" || return 1
}
run_test import-deadline-deletes-image t_import_deadline_deletes

t_hash_mismatch_deletes() {
        # A manifest whose sha512 is not the file's: Glance's os_hash_value
        # will differ, and the uploaded image must not survive.
        mkdir -p "$T_TMP/out/minimal"
        ln -s "$QCOW2" "$T_TMP/out/minimal/minimal.qcow2"
        python3 - "$E2E_MIN_OUT/minimal/kiln-manifest.json" "$T_TMP/out/minimal/kiln-manifest.json" <<'PY' || return 1
import json, sys
m = json.load(open(sys.argv[1]))
m["artifacts"] = [a for a in m["artifacts"] if a["format"] == "qcow2"]
m["artifacts"][0]["sha512"] = "ab" * 64
json.dump(m, open(sys.argv[2], "w"))
PY
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-mismatch
        assert_exit 1 "$KILN" publish --output-dir "$T_TMP/out" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "os_hash_value differs from the local sha512" || return 1
        assert_contains "$(cat "$T_OUT")" "was deleted" || return 1
        assert_eq "" "$(images_named kiln-e2e-mismatch)" "no image left" || return 1
}
run_test hash-mismatch-deletes-image t_hash_mismatch_deletes

t_wrong_endpoint() {
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-nowhere
        sed -i "s#endpoint: $GLANCE_ENDPOINT#endpoint: http://127.0.0.1:1#" "$T_TMP/kiln.yaml"
        assert_exit 1 kpub "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "failed" || return 1
        assert_contains "$(cat "$T_OUT")" "glance: listing images: Failed to connect to 127.0.0.1 port 1" || return 1
}
run_test wrong-endpoint t_wrong_endpoint

t_missing_identity() {
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-anon
        assert_exit 1 env KILN_GLANCE_HEADERS="X-Project-Id: kiln-test" "$KILN" publish \
                --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "HTTP 401 Unauthorized" || return 1
        assert_contains "$(cat "$T_OUT")" "(check the credentials)" || return 1
        assert_eq "" "$(images_named kiln-e2e-anon)" "no image" || return 1
}
run_test missing-identity-401 t_missing_identity

t_wrong_token() {
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-token
        assert_exit 1 env -u KILN_GLANCE_HEADERS OS_TOKEN=gAAAA-e2e-not-a-valid-token "$KILN" -v publish \
                --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "HTTP 401 Unauthorized" || return 1
        assert_not_contains "$(cat "$T_OUT" "$T_ERR")" "e2e-not-a-valid-token" || return 1
        # the verbose log shows the header, masked
        assert_contains "$(cat "$T_ERR")" "X-Auth-Token: <sensitive>" || return 1
}
run_test wrong-token-401-not-shown t_wrong_token

# Keystone cannot run here; what can be tested is that an auth URL that is
# not Keystone v3 gives a clear error and the password never shows.
t_not_keystone() {
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-keystone
        assert_exit 1 env -u KILN_GLANCE_HEADERS OS_AUTH_URL="$GLANCE_ENDPOINT/v3" OS_USERNAME=kiln \
                OS_PASSWORD=e2e-password-never-shown OS_PROJECT_NAME=p "$KILN" -v publish \
                --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "Keystone: $GLANCE_ENDPOINT/v3 does not answer like Keystone v3" || return 1
        assert_not_contains "$(cat "$T_OUT" "$T_ERR")" "e2e-password-never-shown" || return 1
}
run_test auth-url-not-keystone t_not_keystone

t_no_credentials() {
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-nocreds
        assert_exit 1 env -u KILN_GLANCE_HEADERS -u OS_TOKEN -u OS_AUTH_URL "$KILN" publish \
                --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "no credentials for Glance" || return 1
}
run_test no-credentials t_no_credentials

t_bad_settings() {
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-bad "disk_fromat: qcow2" "method: glance_direct"
        local line
        line=$(grep -n "disk_fromat" "$T_TMP/kiln.yaml" | cut -d: -f1)
        assert_exit 2 kpub "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_ERR")" "kiln.yaml:$line:9: error: unknown key 'disk_fromat' in glance" || return 1
        assert_contains "$(cat "$T_ERR")" "did you mean 'disk_format'?" || return 1
        assert_contains "$(cat "$T_ERR")" "kiln.yaml:$((line + 1)):17: error: glance: method: 'glance_direct' is not one of: direct, glance-direct" || return 1
        assert_eq "" "$(images_named kiln-e2e-bad)" "nothing published" || return 1
}
run_test bad-settings-located t_bad_settings

# ---- Keystone: a real Keystone and a second Glance that validates its
# tokens with it (authtoken), reached through Keystone's catalog.

if bash tests/servers/keystone.sh start "$GSRV/keystone" &&
        bash tests/servers/glance.sh start "$GSRV/ksglance" "$GSRV/keystone"; then
        KS_ENV=$(bash tests/servers/keystone.sh env "$GSRV/keystone")
        KS_GLANCE=$(eval "$(bash tests/servers/glance.sh env "$GSRV/ksglance")"; echo "$GLANCE_ENDPOINT")
else
        KS_ENV=""
fi

# ks ARGS... — run ARGS with the Keystone admin's OpenStack RC variables
# and without the test server's trusted headers.
ks() { (set -a; eval "$KS_ENV"; set +a; exec env -u KILN_GLANCE_HEADERS "$@"); }

# ks_token — a project-scoped token for the admin user (X-Subject-Token).
ks_token() {
        (eval "$KS_ENV"
         curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' -d @- "$OS_AUTH_URL/auth/tokens" <<EOF |
{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "$OS_USERNAME",
 "domain": {"name": "Default"}, "password": "$OS_PASSWORD"}}},
 "scope": {"project": {"name": "$OS_PROJECT_NAME", "domain": {"name": "Default"}}}}}
EOF
                 awk -F': ' 'tolower($1) == "x-subject-token" { sub(/\r$/, "", $2); print $2 }')
}

# ks_image NAME — "ID STATUS OS_HASH_VALUE OWNER" of the images of that name.
ks_image() {
        curl -fsS -H "X-Auth-Token: $(ks_token)" "$KS_GLANCE/v2/images?name=$1" |
                python3 -c 'import json,sys; [print(i["id"], i["status"], i["os_hash_value"], i["owner"]) for i in json.load(sys.stdin)["images"]]'
}

t_keystone_password() {
        [ -n "$KS_ENV" ] || { echo "Keystone or its Glance did not start"; return 1; }
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-keystone
        sed -i '/endpoint:/d' "$T_TMP/kiln.yaml" # from the catalog
        assert_exit 0 ks "$KILN" publish --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "uploaded" || return 1
        assert_contains "$(cat "$T_OUT")" "$KS_GLANCE/v2/images/" || return 1
        local id status hash owner project
        read -r id status hash owner <<<"$(ks_image kiln-e2e-keystone)"
        assert_eq "active $SHA512" "$status $hash" || return 1
        project=$(ks sh -c 'curl -fsS -H "X-Auth-Token: $1" "$OS_AUTH_URL/auth/projects"' _ "$(ks_token)" |
                python3 -c 'import json,sys; print([p["id"] for p in json.load(sys.stdin)["projects"] if p["name"] == "admin"][0])')
        assert_eq "$project" "$owner" "the image belongs to the token's project" || return 1
        # v2-style interface names are accepted; the catalog has no internal endpoint
        assert_exit 0 ks env OS_INTERFACE=publicURL "$KILN" publish --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "skipped-identical" || return 1
        assert_exit 1 ks env OS_INTERFACE=internal "$KILN" publish --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "Keystone: no internal image endpoint in region RegionOne in the catalog (set endpoint:)" || return 1
}
run_test keystone-password-catalog t_keystone_password

t_keystone_application_credential() {
        [ -n "$KS_ENV" ] || { echo "Keystone or its Glance did not start"; return 1; }
        local token user ac acid acsecret
        token=$(ks_token)
        user=$(ks sh -c 'curl -fsS -H "X-Auth-Token: $1" -H "X-Subject-Token: $1" "$OS_AUTH_URL/auth/tokens"' _ "$token" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["token"]["user"]["id"])') || return 1
        ac=$(ks sh -c 'curl -fsS -H "X-Auth-Token: $1" -H "Content-Type: application/json" \
                -d "{\"application_credential\": {\"name\": \"kiln-e2e-$$\"}}" "$OS_AUTH_URL/users/$2/application_credentials"' _ "$token" "$user") || return 1
        acid=$(echo "$ac" | python3 -c 'import json,sys; print(json.load(sys.stdin)["application_credential"]["id"])')
        acsecret=$(echo "$ac" | python3 -c 'import json,sys; print(json.load(sys.stdin)["application_credential"]["secret"])')
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-appcred "method: glance-direct"
        sed -i '/endpoint:/d' "$T_TMP/kiln.yaml"
        assert_exit 0 ks env -u OS_USERNAME -u OS_PASSWORD OS_APPLICATION_CREDENTIAL_ID="$acid" \
                OS_APPLICATION_CREDENTIAL_SECRET="$acsecret" "$KILN" -v publish \
                --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "uploaded" || return 1
        assert_not_contains "$(cat "$T_OUT" "$T_ERR")" "$acsecret" || return 1
        local id status hash owner
        read -r id status hash owner <<<"$(ks_image kiln-e2e-appcred)"
        assert_eq "active $SHA512" "$status $hash" || return 1
        # a wrong secret: Keystone's 401, clearly, and the secret not shown
        assert_exit 1 ks env -u OS_USERNAME -u OS_PASSWORD OS_APPLICATION_CREDENTIAL_ID="$acid" \
                OS_APPLICATION_CREDENTIAL_SECRET=e2e-wrong-app-secret "$KILN" publish \
                --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "Keystone: getting a token: HTTP 401 Unauthorized" || return 1
        assert_not_contains "$(cat "$T_OUT" "$T_ERR")" "e2e-wrong-app-secret" || return 1
}
run_test keystone-application-credential t_keystone_application_credential

t_keystone_static_token() {
        [ -n "$KS_ENV" ] || { echo "Keystone or its Glance did not start"; return 1; }
        local token
        token=$(ks_token)
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-keystone
        sed -i "s#endpoint: .*#endpoint: $KS_GLANCE#" "$T_TMP/kiln.yaml"
        assert_exit 0 env -u KILN_GLANCE_HEADERS OS_TOKEN="$token" "$KILN" -v publish \
                --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "skipped-identical" || return 1
        assert_not_contains "$(cat "$T_OUT" "$T_ERR")" "$token" || return 1
}
run_test keystone-static-token t_keystone_static_token

t_keystone_wrong_password() {
        [ -n "$KS_ENV" ] || { echo "Keystone or its Glance did not start"; return 1; }
        write_spec "$T_TMP/kiln.yaml" kiln-e2e-keystone-bad
        sed -i '/endpoint:/d' "$T_TMP/kiln.yaml"
        assert_exit 1 ks env OS_PASSWORD=e2e-wrong-password "$KILN" -v publish \
                --output-dir "$E2E_MIN_OUT" "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "Keystone: getting a token: HTTP 401 Unauthorized: The request you have made requires authentication. (check the credentials)" || return 1
        assert_not_contains "$(cat "$T_OUT" "$T_ERR")" "e2e-wrong-password" || return 1
        assert_eq "" "$(ks_image kiln-e2e-keystone-bad)" "no image" || return 1
}
run_test keystone-wrong-password t_keystone_wrong_password

e2e_summary
