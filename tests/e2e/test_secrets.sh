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
SHARED=$(mktemp -d /var/tmp/kiln-e2e-secrets.XXXXXX)
e2e_cleanup_add "$SHARED"

# A busybox root tree, as a tarball the specs use as their source.
mkdir -p "$SHARED/tree/bin" "$SHARED/tree/etc" "$SHARED/tree/root"
cp /bin/busybox "$SHARED/tree/bin/busybox"
for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$SHARED/tree/bin/$a"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$SHARED/tree/etc/passwd"
echo "root:x:0:" >"$SHARED/tree/etc/group"
tar -C "$SHARED/tree" -czf "$SHARED/busybox.tar.gz" .

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

e2e_summary
