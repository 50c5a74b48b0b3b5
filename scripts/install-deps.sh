#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# install-deps.sh — install every build and test dependency of kiln on a
# fresh Debian 12 machine, with apt-get. Run by `make deps` (and so by
# `make check` and `make demo`).
#
#   scripts/install-deps.sh          install what is missing (needs root)
#   scripts/install-deps.sh --list   print the package list, one per line
#   scripts/install-deps.sh --help   this text
#
# When everything is already installed it says so and exits at once, without
# touching the network and without needing root.
#
# To add a dependency, add it to the PACKAGES array below, in the group it
# belongs to (or a new commented group).
set -euo pipefail

PACKAGES=(
        # build: compiler, make, and the two libraries kiln links against
        gcc
        make
        pkg-config
        libyaml-dev
        libssl-dev

        # tests: sanitizer runtimes for the build-san/ tree (ship with gcc-12;
        # listed explicitly so a missing runtime is caught here, not at link)
        libasan8
        libubsan1
        # tests: python3 for JSON/XML checks in the end-to-end tests
        python3

        # build engine: root trees from Debian suites, Ansible provisioning,
        # tarball sources (zstd/xz/gzip), and a tiny static root for the
        # sandbox tests (busybox)
        mmdebstrap
        ansible
        zstd
        xz-utils
        busybox-static

        # image assembly: filesystems written into image files without
        # mounting (e2fsprogs' mkfs.ext4 -d, FAT via dosfstools + mtools),
        # and the compression libraries kiln's format writers link against;
        # xfsprogs for xfs partitions (mkfs.xfs -p protofile; getfattr from
        # attr finds what a protofile cannot carry)
        e2fsprogs
        xfsprogs
        attr
        fdisk
        dosfstools
        mtools
        libzstd-dev
        zlib1g-dev
        liblzma-dev
        # libdeflate: the VMDK writer's grain compressor when present (found
        # with dlopen; zlib otherwise), 3.8x less CPU than zlib for the same size
        libdeflate0

        # boot tests and benchmarks: QEMU with SeaBIOS and OVMF firmware,
        # qemu-img for checking and comparing images
        qemu-system-x86
        qemu-utils
        ovmf

        # validation: libraries for HTTP (libcurl), the image catalog
        # (SQLite) and the image server (libmicrohttpd); ssh/ssh-keygen for
        # kiln boot; isoinfo (genisoimage) and xorriso only to read back the
        # seed ISOs kiln writes in the tests
        libcurl4-openssl-dev
        libsqlite3-dev
        libmicrohttpd-dev
        openssh-client
        genisoimage
        xorriso

        # publishing tests: real servers on 127.0.0.1 — OpenStack Swift with
        # its S3 API, OpenStack Glance — and the clients kiln is compared
        # with in bench/ (s3cmd, rclone)
        swift
        swift-proxy
        swift-object
        swift-container
        swift-account
        glance-api
        # Keystone (the library and its WSGI app, without the packaged
        # service) and the token middleware Glance validates its tokens with,
        # for the Glance publisher's Keystone v3 tests
        python3-keystone
        python3-keystonemiddleware
        s3cmd
        rclone
        curl
        # bench/vhd-gce.sh: the parallel gzip kiln's gce writer is compared with
        pigz
)

# usage: print the header comment above (after the SPDX line, up to the
# first line that is not a comment).
usage() {
        awk 'NR > 2 && !/^#/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "$0"
}

case "${1:-}" in
-h | --help)
        usage
        exit 0
        ;;
-l | --list)
        printf '%s\n' "${PACKAGES[@]}"
        exit 0
        ;;
"") ;;
*)
        echo "install-deps: unknown argument '$1'" >&2
        usage >&2
        exit 2
        ;;
esac

# is_installed PKG — true if dpkg reports PKG as "install ok installed" (for
# any architecture it is installed for).
is_installed() {
        dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -qx 'install ok installed'
}

if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "install-deps: dpkg-query not found; this script supports Debian 12 (apt/dpkg) only" >&2
        exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
        echo "deps: all ${#PACKAGES[@]} packages present"
        exit 0
fi

echo "deps: missing ${#missing[@]} of ${#PACKAGES[@]} packages: ${missing[*]}"

if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: installing packages needs root; run as root or with sudo:" >&2
        echo "    sudo $0" >&2
        exit 1
fi

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

# Verify: apt-get can succeed while leaving a package half-configured.
still=()
for pkg in "${missing[@]}"; do
        is_installed "$pkg" || still+=("$pkg")
done
if [ "${#still[@]}" -ne 0 ]; then
        echo "install-deps: still not installed after apt-get: ${still[*]}" >&2
        exit 1
fi
echo "deps: installed ${missing[*]}"
