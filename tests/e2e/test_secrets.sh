#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of secrets during `kiln build`: step logs mask a secret
# whatever the length of its line, a secret reaches only the processes of
# the steps that use it (never the bootstrap, never process arguments), no
# file holding one survives kill -9 of kiln, and images and cache layers of a
# build that holds secret files are not world-readable. The trees are tiny
# busybox trees (a tarball source, or a stand-in mmdebstrap that writes one),
# so no test waits for a Debian bootstrap. Needs root.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_secrets: needs root (namespaces, overlay mounts)"
        echo "0 passed, 1 failed"
        exit 1
fi
if [ ! -x /bin/busybox ]; then
        echo "test_secrets: needs /bin/busybox (busybox-static)"
        echo "0 passed, 1 failed"
        exit 1
fi

SECRET=Zq8-s3cr3t-Vx71-k9
PY3=/usr/bin/python3
[ -x "$PY3" ] || PY3=python3
SHARED=$(mktemp -d /var/tmp/kiln-e2e-secrets.XXXXXX)
e2e_cleanup_add "$SHARED"

# A busybox root tree, as a tarball the specs use as their source.
e2e_busybox_tarball "$SHARED"

# kb SPEC [ARGS...] — kiln build of the test's spec into the test's own dirs.
kb() {
        KILN_CACHE_DIR=$T_TMP/cache "$KILN" build --work-dir "$T_TMP/work" \
                --output-dir "$T_TMP/output" --no-store --no-publish "$@"
}

# spec_head — the variables and the source every spec here starts with.
spec_head() {
        cp "$SHARED/busybox.tar.gz" "$T_TMP/busybox.tar.gz"
        cat >"$T_TMP/kiln.yaml" <<YAML
variables:
  token: {sensitive: true, default: "$SECRET"}
builds:
YAML
}

# -- 1. masking holds for any line length and any read boundary ----------------

t_long_line_masked() {
        spec_head
        cat >>"$T_TMP/kiln.yaml" <<'YAML'
  long:
    source: {type: tarball, path: busybox.tar.gz}
    steps:
      - shell:
          # the secret straddles 64 KiB (and 128 KiB) of one line, at every
          # offset of its length; then split over two writes
          - |
            t='${var.token}'
            n=$${#t}
            i=1
            while [ $i -lt $n ]; do
              head -c $((65536 - i)) /dev/zero | tr '\0' x
              printf '%s' "$t"
              head -c $((65536 - n + i)) /dev/zero | tr '\0' y
              printf '%s\n' "$t"
              i=$((i + 1))
            done
            printf '%s' "$${t%????????}"; printf '%s\n' "$${t#??????????}"
YAML
        assert_exit 0 kb --trees-only --debug "$T_TMP/kiln.yaml" || return 1
        local log=$T_TMP/work/long/logs/01-shell.log
        [ "$(stat -c %s "$log")" -gt $((130 * 1024)) ] || t_fail "the step printed too little" || return 1
        assert_eq "" "$(grep -c -F "$SECRET" "$log" "$T_OUT" "$T_ERR" | grep -v ':0$')" \
                "the secret is in the log or the output" || return 1
        # every long line kept both of its masked secrets
        local lines; lines=$(grep -c '<sensitive>.*<sensitive>' "$log")
        assert_eq "$((${#SECRET} - 1))" "$lines" "lines with two masked secrets" || return 1
}
run_test long-line-masked t_long_line_masked

# -- 2 and 5. a secret reaches only the processes that use it, never argv --------

# fake_mmdebstrap — a stand-in mmdebstrap first in PATH: it records its
# environment, command line and stdin (and those of a child) in $T_TMP/seen,
# then unpacks the busybox tree into its TARGET (the second positional
# argument).
fake_mmdebstrap() {
        mkdir -p "$T_TMP/bin" "$T_TMP/seen"
        cat >"$T_TMP/bin/mmdebstrap" <<SH
#!/bin/sh
seen=$T_TMP/seen
env >"\$seen/mmdebstrap.env"
tr '\0' ' ' </proc/\$\$/cmdline >"\$seen/mmdebstrap.cmdline"
cat >"\$seen/mmdebstrap.stdin"
sh -c 'cat /proc/self/environ' >"\$seen/mmdebstrap-child.environ"
n=0
for a in "\$@"; do
        case "\$a" in --*) continue ;; esac
        n=\$((n + 1))
        [ \$n -eq 2 ] && tar -xzf "$SHARED/busybox.tar.gz" -C "\$a"
done
exit 0
SH
        chmod +x "$T_TMP/bin/mmdebstrap"
}

t_secret_only_where_used() {
        spec_head
        fake_mmdebstrap
        # the secret arrives the usual ways: KILN_VAR_token, and another
        # variable of kiln's environment that holds it
        sed -i 's/token: {sensitive: true, default: .*/token: {sensitive: true}/' "$T_TMP/kiln.yaml"
        printf '%s\n' "$SECRET" | rev >"$T_TMP/needle.rev"
        cat >>"$T_TMP/kiln.yaml" <<YAML
  env:
    source:
      type: debian
      suite: bookworm
      mirror: "http://kiln:\${var.token}@127.0.0.1:9/debian"
    steps:
      - name: plain host step
        host-shell:
          - env > "$T_TMP/seen/host-plain.env"
          # whose command line holds the secret while a step runs?
          - rev < "$T_TMP/needle.rev" > "$T_TMP/needle"
          - grep -alF -f "$T_TMP/needle" /proc/[0-9]*/cmdline > "$T_TMP/seen/cmdline-hits" 2>/dev/null || true
          - rm -f "$T_TMP/needle"
      - name: plain tree step
        shell: "cat /proc/self/environ > /etc/plain.environ"
      - file: {path: /etc/app.key, content: "\${var.token}", mode: "0400"}
      - name: host step that uses it
        host-shell:
          - test "\${var.token}" = "\$\${DB_URL_SECRET_PART}"
          - env > "$T_TMP/seen/host-uses.env"
YAML
        local rc=0
        PATH=$T_TMP/bin:$PATH KILN_VAR_token=$SECRET DB_URL_SECRET_PART=$SECRET \
                AWS_SECRET_ACCESS_KEY=aws-key-not-for-builds \
                KILN_CACHE_DIR=$T_TMP/cache "$KILN" build --work-dir "$T_TMP/work" --trees-only \
                --no-store --no-publish "$T_TMP/kiln.yaml" >"$T_OUT" 2>"$T_ERR" || rc=$?
        [ $rc -eq 0 ] || { cat "$T_OUT" "$T_ERR" "$T_TMP"/work/env/logs/*.log; t_fail "build failed: $rc"; return 1; }
        local seen=$T_TMP/seen
        # the bootstrap and its children: no secret in environment or arguments
        assert_not_contains "$(cat "$seen/mmdebstrap.env")" "$SECRET" || return 1
        assert_not_contains "$(cat "$seen/mmdebstrap.env")" "KILN_VAR_" || return 1
        assert_not_contains "$(cat "$seen/mmdebstrap.env")" "aws-key-not-for-builds" || return 1
        assert_not_contains "$(tr '\0' '\n' <"$seen/mmdebstrap-child.environ")" "$SECRET" || return 1
        assert_not_contains "$(cat "$seen/mmdebstrap.cmdline")" "$SECRET" || return 1
        # ... which gets its mirror, credentials and all, on stdin
        assert_eq "deb http://kiln:$SECRET@127.0.0.1:9/debian bookworm main" "$(cat "$seen/mmdebstrap.stdin")" || return 1
        # a step that does not use it does not get it, on the host or in the tree
        assert_not_contains "$(cat "$seen/host-plain.env")" "$SECRET" || return 1
        assert_contains "$(cat "$seen/host-plain.env")" "PATH=" || return 1
        assert_eq "" "$(cat "$seen/cmdline-hits")" "processes with the secret in their arguments" || return 1
        assert_exit 0 env KILN_VAR_token="$SECRET" "$KILN" shell --work-dir "$T_TMP/work" "$T_TMP/kiln.yaml" env -- \
                sh -c 'tr "\0" "\n" < /etc/plain.environ; stat -c "%a %U" /etc/app.key; cat /etc/app.key' || return 1
        assert_not_contains "$(head -n -2 "$T_OUT")" "$SECRET" || return 1
        assert_eq "400 root
$SECRET" "$(tail -n 2 "$T_OUT")" "the secret file" || return 1
        # the step that uses it has it
        assert_contains "$(cat "$seen/host-uses.env")" "DB_URL_SECRET_PART=$SECRET" || return 1
        # and nothing kiln wrote holds it
        assert_eq "" "$(grep -rlF "$SECRET" "$T_TMP/work" "$T_TMP/cache" --exclude=app.key)" || return 1
}
run_test secret-only-where-used t_secret_only_where_used

t_secret_in_argument_refused() {
        spec_head
        cat >>"$T_TMP/kiln.yaml" <<'YAML'
  argv:
    source: {type: tarball, path: busybox.tar.gz}
    steps:
      - packages: ["pkg-${var.token}"]
YAML
        assert_exit 1 kb --trees-only "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_TMP"/work/argv/logs/01-packages.log)" \
                "a sensitive value would be a command-line argument" || return 1
}
run_test secret-in-argument-refused t_secret_in_argument_refused

t_secret_in_step_name_masked() {
        spec_head
        cat >>"$T_TMP/kiln.yaml" <<'YAML'
  named:
    source: {type: tarball, path: busybox.tar.gz}
    steps:
      - name: "deploy ${var.token}"
        shell: "true"
YAML
        assert_exit 0 kb --trees-only --explain "$T_TMP/kiln.yaml" || return 1
        # The spec front end stores a step name derived from a secret as
        # <sensitive> as a whole (docs/spec.md, sensitive variables).
        assert_eq 2 "$(grep -cE '1/1 +shell +<sensitive> ' "$T_OUT")" || return 1
        assert_eq "" "$(grep -rlF "$SECRET" "$T_OUT" "$T_ERR" "$T_TMP/work" "$T_TMP/cache")" || return 1
}
run_test secret-in-step-name-masked t_secret_in_step_name_masked

# -- 3. nothing holding a secret survives kill -9 of kiln -------------------------

t_kill_9_leaves_no_secret() {
        spec_head
        sed -i 's/token: {sensitive: true, default: .*/token: {sensitive: true}/' "$T_TMP/kiln.yaml"
        local nap=$((400000 + $$))
        cat >>"$T_TMP/kiln.yaml" <<YAML
  slow:
    source: {type: tarball, path: busybox.tar.gz}
    steps:
      - shell:
          - test -n "\${var.token}"
          - sleep $nap
YAML
        : >"$T_TMP/start"
        KILN_VAR_token=$SECRET KILN_CACHE_DIR=$T_TMP/cache "$KILN" build --work-dir "$T_TMP/work" \
                --trees-only --no-store "$T_TMP/kiln.yaml" >"$T_TMP/out" 2>&1 &
        local pid=$! deadline=$((SECONDS + 60))
        until pgrep -f "sleep $nap" >/dev/null; do
                [ $SECONDS -lt $deadline ] || { cat "$T_TMP/out"; kill -9 $pid; t_fail "the step never started"; return 1; }
                sleep 0.1
        done
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        deadline=$((SECONDS + 10))
        while pgrep -f "sleep $nap" >/dev/null; do
                [ $SECONDS -lt $deadline ] || { t_fail "the step survived kill -9 of kiln"; return 1; }
                sleep 0.1
        done
        local hits
        hits=$(find "$T_TMP" /tmp /var/tmp /dev/shm -xdev -type f -newer "$T_TMP/start" -print0 2>/dev/null |
                xargs -0 -r grep -lF "$SECRET" 2>/dev/null)
        assert_eq "" "$hits" "files holding the secret after kill -9" || return 1
}
run_test kill-9-leaves-no-secret t_kill_9_leaves_no_secret

# -- 4. layers, images and store blobs that hold secrets are not world-readable ---

t_cache_and_tree_modes() {
        spec_head
        cat >>"$T_TMP/kiln.yaml" <<'YAML'
  modes:
    source: {type: tarball, path: busybox.tar.gz}
    steps:
      - file: {path: /etc/app.key, content: "${var.token}"}
      - file: {path: /etc/app.conf, content: "not secret\n"}
      - shell: "exit 3"
YAML
        assert_exit 1 kb --trees-only --on-error=abort "$T_TMP/kiln.yaml" || return 1
        # every cached layer is behind a 0700 directory
        assert_eq 700 "$(stat -c %a "$T_TMP/cache/entries")" "entries/" || return 1
        local layer
        layer=$(grep -l -F /etc/app.key "$T_TMP"/cache/entries/*/meta.json | head -1)
        layer=${layer%/meta.json}
        [ -n "$layer" ] || t_fail "no layer of the file step" || return 1
        assert_eq 700 "$(stat -c %a "$layer")" "the layer's entry dir" || return 1
        # a file whose content is secret is private without mode:, others are not
        assert_eq 600 "$(stat -c %a "$layer/tree/etc/app.key")" "secret file mode" || return 1
        assert_eq "$SECRET" "$(cat "$layer/tree/etc/app.key")" || return 1
        assert_eq 644 "$(find "$T_TMP"/cache/entries/*/tree/etc -name app.conf -printf '%m')" || return 1
        # a failed step's kept layer too
        assert_eq 700 "$(stat -c %a "$T_TMP/work/modes/failed")" "failed/" || return 1
        # an older cache is tightened when opened
        chmod 755 "$T_TMP/cache/entries"
        assert_exit 0 env KILN_CACHE_DIR="$T_TMP/cache" "$KILN" cache list || return 1
        assert_eq 700 "$(stat -c %a "$T_TMP/cache/entries")" "entries/ after reopening" || return 1
}
run_test cache-and-tree-modes t_cache_and_tree_modes

t_store_blob_modes() {
        local st=$T_TMP/store shm
        shm=$(mktemp -d /dev/shm/kiln-e2e-secrets.XXXXXX) || return 1
        head -c 100000 /dev/urandom >"$T_TMP/public.raw"
        head -c 100000 /dev/urandom >"$shm/private.raw"
        chmod 644 "$T_TMP/public.raw"
        chmod 600 "$shm/private.raw"
        # a copy (another file system) of a private file is private
        assert_exit 0 "$KILN" images add --store "$st" --name priv "$shm/private.raw" || { rm -rf "$shm"; return 1; }
        local sum; sum=$(sha256sum "$shm/private.raw" | cut -d' ' -f1)
        rm -rf "$shm"
        assert_eq 400 "$(stat -c %a "$st/blobs/sha256/${sum:0:2}/$sum")" "copied private blob" || return 1
        # a public file stays readable; its content added again from a private
        # file makes the blob private
        assert_exit 0 "$KILN" images add --store "$st" --copy --name pub "$T_TMP/public.raw" || return 1
        local psum; psum=$(sha256sum "$T_TMP/public.raw" | cut -d' ' -f1)
        assert_eq 444 "$(stat -c %a "$st/blobs/sha256/${psum:0:2}/$psum")" "public blob" || return 1
        cp "$T_TMP/public.raw" "$T_TMP/again.raw"
        chmod 600 "$T_TMP/again.raw"
        assert_exit 0 "$KILN" images add --store "$st" --copy --name again "$T_TMP/again.raw" || return 1
        assert_eq 400 "$(stat -c %a "$st/blobs/sha256/${psum:0:2}/$psum")" "blob made private" || return 1
        # serve-images (run as the store's owner) still serves it
        "$KILN" serve-images --store "$st" --listen 127.0.0.1:0 >"$T_TMP/srv.out" 2>"$T_TMP/srv.err" &
        local srv=$! end=$((SECONDS + 20)) url=
        until url=$(grep -o 'http://127.0.0.1:[0-9]*' "$T_TMP/srv.out"); do
                [ $SECONDS -lt $end ] || { kill $srv; t_fail "serve-images printed no URL"; return 1; }
                sleep 0.05
        done
        local got
        got=$(curl -fsS "$url/blobs/sha256/$sum" | sha256sum | cut -d' ' -f1)
        kill -TERM $srv
        wait $srv
        assert_eq "$sum" "$got" "served private blob" || return 1
}
run_test store-blob-modes t_store_blob_modes

# A real image (examples/minimal with a secret file added): written 0600,
# stored private. Shares the step cache of e2e_minimal_build, so only the
# new step and the assembly run.
t_image_of_secret_build_is_private() {
        e2e_minimal_build || return 1
        "$PY3" -c '
import sys
text = open(sys.argv[1]).read()
text = text.replace("variables:\n", "variables:\n  token: {sensitive: true}\n", 1)
text = text.replace("    disk:\n      size: 2G\n    outputs: [raw, qcow2]",
                    "      - file: {path: /etc/app.key, content: \"${var.token}\", mode: \"0400\"}\n"
                    "    disk:\n      size: 2G\n    outputs: [qcow2]", 1)
open(sys.argv[2], "w").write(text)
' examples/minimal/kiln.yaml "$T_TMP/kiln.yaml"
        grep -q app.key "$T_TMP/kiln.yaml" || t_fail "could not add the step" || return 1
        assert_exit 0 env KILN_VAR_token="$SECRET" KILN_CACHE_DIR="$E2E_MIN_CACHE" "$KILN" build \
                --work-dir "$T_TMP/work" --output-dir "$T_TMP/output" --store "$T_TMP/store" \
                --no-checks "$T_TMP/kiln.yaml" || return 1
        local img=$T_TMP/output/minimal/minimal.qcow2
        assert_eq 600 "$(stat -c %a "$img")" "image mode" || return 1
        assert_eq 644 "$(stat -c %a "$T_TMP/output/minimal/SHA256SUMS")" "checksums" || return 1
        local sum; sum=$(sha256sum "$img" | cut -d' ' -f1)
        local blob=$T_TMP/store/blobs/sha256/${sum:0:2}/$sum
        [ -f "$blob" ] || t_fail "not stored" || return 1
        case "$(stat -c %a "$blob")" in 400 | 600) ;; *) t_fail "blob mode $(stat -c %a "$blob")"; return 1 ;; esac
        # the examples/minimal images (no secret) stay world-readable
        assert_eq 644 "$(stat -c %a "$E2E_MIN_OUT/minimal/minimal.qcow2")" || return 1
}
run_test image-of-secret-build-is-private t_image_of_secret_build_is_private

e2e_summary
