#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian bootstrap at its floor (src/provision/steps.c, run_debian): the
# docs filter written after the Essential extraction instead of mmdebstrap's
# per-file tar filter, one initramfs per tree, dpkg's unsafe I/O, the
# package cache. The tree must be the same as the old command line's
# (KILN_BOOTSTRAP_LEGACY=1): every path, type, mode, owner and content
# (tree-manifest.py names what may differ and why). Needs root and the
# machine's apt sources; two bootstraps of examples/minimal's package set.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_bootstrap: needs root (namespaces, overlay mounts)"
        echo "0 passed, 1 failed"
        exit 1
fi

S=$(mktemp -d /var/tmp/kiln-e2e-bootstrap.XXXXXX)
e2e_cleanup_add "$S"
MANIFEST="$E2E_ROOT/tests/e2e/tree-manifest.py"

# examples/minimal's source, no steps
cat >"$S/kiln.yaml" <<'YAML'
builds:
  boot:
    source:
      type: debian
      suite: bookworm
      variant: apt
      packages: [linux-image-cloud-amd64, initramfs-tools, systemd-sysv, udev, e2fsprogs,
                 grub-pc-bin, grub-efi-amd64-bin, ifupdown, cloud-init, cloud-guest-utils,
                 sudo, openssh-server]
YAML

# bootstrap LABEL [ENV...] — the tree in $S/LABEL (cache), $S/LABEL-work
bootstrap() {
        local label=$1
        shift
        env "$@" KILN_CACHE_DIR="$S/$label" "$KILN" build --trees-only --no-checks \
                --work-dir "$S/$label-work" "$S/kiln.yaml" >"$S/$label.out" 2>&1 ||
                { tail -40 "$S/$label.out" "$S/$label-work/boot/logs/00-source.log"; return 1; }
}

layer() { head -1 "$S/$1-work/boot/layers"; }

t_same_tree_as_before() {
        bootstrap legacy KILN_BOOTSTRAP_LEGACY=1 || return 1
        # the new path starts with the packages the old one fetched
        mkdir -p "$S/new"
        cp -al "$S/legacy/packages" "$S/new/packages" || return 1
        bootstrap new || return 1
        local old new
        old=$(layer legacy) new=$(layer new)
        [ -d "$old" ] && [ -d "$new" ] || t_fail "no trees: '$old' '$new'" || return 1
        python3 "$MANIFEST" "$old" >"$S/legacy.manifest" || return 1
        python3 "$MANIFEST" "$new" >"$S/new.manifest" || return 1
        # the manifests are of whole trees, docs left out in both
        [ "$(wc -l <"$S/new.manifest")" -gt 10000 ] || t_fail "a small tree?" || return 1
        assert_contains "$(cat "$S/new.manifest")" "/usr/share/doc/bash/copyright 0644" || return 1
        assert_not_contains "$(cat "$S/new.manifest")" "/usr/share/man/man1/" || return 1
        assert_not_contains "$(cat "$S/new.manifest")" "/usr/share/doc/bash/README" || return 1
        assert_not_contains "$(cat "$S/new.manifest")" "/run/kiln-defer" || return 1
        assert_not_contains "$(cat "$S/new.manifest")" "kiln-unsafe-io" || return 1
        assert_file_eq "$S/legacy.manifest" "$S/new.manifest" || return 1
        # the initramfs holds the same files
        chroot "$old" sh -c 'lsinitramfs /boot/initrd.img-* | sort' >"$S/legacy.initrd" || return 1
        chroot "$new" sh -c 'lsinitramfs /boot/initrd.img-* | sort' >"$S/new.initrd" || return 1
        [ "$(wc -l <"$S/new.initrd")" -gt 100 ] || t_fail "a small initramfs?" || return 1
        assert_file_eq "$S/legacy.initrd" "$S/new.initrd" || return 1

        # how: no filter on mmdebstrap's command line; the kernel's hook and
        # initramfs-tools' trigger both asked for an initramfs, and it was
        # built once (mmdebstrap shows no dpkg output, the hooks' it does)
        local lo=$S/legacy-work/boot/logs/00-source.log ln=$S/new-work/boot/logs/00-source.log
        assert_contains "$(grep '^kiln: mmdebstrap' "$lo")" "--dpkgopt=path-exclude" || return 1
        assert_not_contains "$(grep '^kiln: mmdebstrap' "$ln")" "--dpkgopt" || return 1
        local calls
        calls=$(sed -n 's/^kiln: \([0-9]*\) deferred update-initramfs call(s); building once for: [^ ]*$/\1/p' "$ln")
        [ "${calls:-0}" -ge 2 ] || t_fail "deferred calls: '$calls'" "$(grep deferred "$ln")" || return 1
        assert_eq 1 "$(grep -c 'update-initramfs: Generating /boot/initrd.img' "$ln")" || return 1
        # the package cache: the new bootstrap had every package at hand
        local n
        n=$(sed -n 's/^kiln: package cache: \([0-9]*\) files at hand$/\1/p' "$ln")
        [ "${n:-0}" -gt 100 ] || t_fail "package cache: '${n}' files at hand" || return 1
        assert_contains "$(cat "$ln")" "kiln: package cache: 0 new files" || return 1
        assert_exit 0 env KILN_CACHE_DIR="$S/new" "$KILN" cache list --json || return 1
        assert_eq True "$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["packages"]; print(p["files"] > 100 and p["size"] > 50e6)' "$T_OUT")" || return 1
}
run_test same-tree-as-before t_same_tree_as_before

# A packages step that activates initramfs-tools' trigger builds it once, at
# the end of the step, and so does a file step that changes its
# configuration; a damaged cached package is never handed out.
t_packages_step_initramfs_and_cache() {
        [ -s "$S/new-work/boot/layers" ] || t_fail "needs same-tree-as-before" || return 1
        cat >>"$S/kiln.yaml" <<'YAML'
    steps:
      - packages: [busybox]
      - file: {path: /etc/initramfs-tools/conf.d/kiln-test, content: "# set by a test\n"}
YAML
        bootstrap new || return 1
        local log=$S/new-work/boot/logs/01-packages.log
        assert_eq 1 "$(grep -c 'update-initramfs: Generating /boot/initrd.img' "$log")" || return 1
        # a file step that changes the initramfs configuration: built once after it
        local flog=$S/new-work/boot/logs/02-file.log
        assert_contains "$(cat "$flog")" "kiln: the step changed the initramfs configuration" || return 1
        assert_eq 1 "$(grep -c 'update-initramfs: Generating /boot/initrd.img' "$flog")" || return 1
        assert_contains "$(cat "$log")" "kiln: package cache: 1 new file" || return 1
        # damage the cached busybox: the next run fetches it again
        local f
        f=$(readlink -f "$S"/new/packages/by-name/busybox_*.deb)
        [ -f "$f" ] || t_fail "busybox not in the package cache" || return 1
        echo damage >>"$f"
        # (cpio is installed already: a new key, the same download)
        sed -i 's/packages: \[busybox\]/packages: [busybox, cpio]/' "$S/kiln.yaml"
        bootstrap new || return 1
        assert_contains "$(cat "$S/new-work/boot/logs/01-packages.log")" "kiln: package cache: 1 new file" || return 1
        assert_eq "$(basename "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)" "the damaged file was replaced" || return 1
}
run_test packages-step-initramfs-and-cache t_packages_step_initramfs_and_cache

# refresh: release — a flat apt repository on 127.0.0.1 (python's
# http.server): an unchanged Release reuses the update step, a changed one
# re-runs it, and with the mirror gone the last Release seen is reused.
REPO_PID=
stop_repo() { [ -z "$REPO_PID" ] || { kill "$REPO_PID" 2>/dev/null; wait "$REPO_PID" 2>/dev/null; REPO_PID=; }; }
write_release() { # DATE
        {
                echo "Origin: kiln-test"
                echo "Label: kiln-test"
                echo "Date: $1"
                echo "SHA256:"
                echo " $(sha256sum <"$S/repo/Packages" | cut -d' ' -f1) $(stat -c %s "$S/repo/Packages") Packages"
        } >"$S/repo/Release"
}
t_refresh_release() {
        [ -s "$S/new-work/boot/layers" ] || t_fail "needs same-tree-as-before" || return 1
        mkdir -p "$S/repo"
        : >"$S/repo/Packages"
        write_release "Thu, 01 Jan 2026 00:00:00 UTC"
        local port
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        python3 -m http.server --bind 127.0.0.1 --directory "$S/repo" "$port" >"$S/repo.log" 2>&1 &
        REPO_PID=$!
        local i=0
        until curl -sf "http://127.0.0.1:$port/Release" >/dev/null; do
                i=$((i + 1)); [ $i -lt 100 ] || { stop_repo; t_fail "the repository never served"; return 1; }
                sleep 0.1
        done
        sed "s/^builds:/builds:/" "$S/kiln.yaml" | sed '/^    steps:/,$d' >"$S/refresh.yaml"
        cat >>"$S/refresh.yaml" <<YAML
    steps:
      - file: {path: /etc/apt/sources.list, content: "deb [trusted=yes] http://127.0.0.1:$port/ ./\n"}
      - shell: "rm -f /etc/apt/sources.list.d/*"
      - update: {refresh: release}
YAML
        kr() { env KILN_CACHE_DIR="$S/new" "$KILN" build --trees-only --no-checks --explain --work-dir "$S/new-work" "$S/refresh.yaml"; }
        assert_exit 0 kr || { stop_repo; return 1; }
        assert_contains "$(cat "$T_OUT")" "3 steps run" || { stop_repo; return 1; }
        # unchanged: reused, and said why
        assert_exit 0 kr || { stop_repo; return 1; }
        assert_contains "$(cat "$T_OUT")" "0 steps run" || { stop_repo; return 1; }
        assert_contains "$(cat "$T_OUT")" "hit: refresh: release, the mirror's Release unchanged since $(date -u +%F)" || { stop_repo; return 1; }
        # the Release changes: the update step runs again, and only it
        write_release "Fri, 02 Jan 2026 00:00:00 UTC"
        assert_exit 0 kr || { stop_repo; return 1; }
        assert_contains "$(cat "$T_OUT")" "1 step run" || { stop_repo; return 1; }
        assert_contains "$(cat "$T_OUT")" "refresh: release, the mirror's Release changed since $(date -u +%F), re-running" || { stop_repo; return 1; }
        grep -q "GET /InRelease" "$S/repo.log" || { stop_repo; t_fail "kiln never asked for InRelease"; return 1; }
        # offline: the Release seen last is reused, with a note
        stop_repo
        assert_exit 0 kr || return 1
        assert_contains "$(cat "$T_OUT")" "0 steps run" || return 1
        assert_contains "$(cat "$T_OUT")" "refresh: release, cannot fetch http://127.0.0.1:$port/InRelease" || return 1
        assert_contains "$(cat "$T_OUT")" "reusing the Release of $(date -u +%F)" || return 1
        # offline and never built: a clear error
        sed -i 's/^  boot:/  boot2:/' "$S/refresh.yaml"
        assert_exit 1 kr || return 1
        assert_contains "$(cat "$T_OUT" "$T_ERR")" "refresh: release: cannot fetch http://127.0.0.1:$port/InRelease" || return 1
}
run_test refresh-release t_refresh_release
stop_repo

e2e_summary
