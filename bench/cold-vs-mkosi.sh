#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/cold-vs-mkosi.sh — a whole cold build (root tree + bootable raw disk
# image) by kiln against mkosi 14 building the same image, in interleaved
# rounds (bench/lib.sh):
#
#   kiln-coldpkg    kiln build bench/specs/mkosi-equivalent.yaml (mkosi's
#                   package set plus what kiln's boot path needs, outputs:
#                   [raw]), empty step cache, empty package cache
#   mkosi-coldpkg   ../shared/anchors/mkosi/run.sh WORKDIR cold (mkosi -f
#                   build, gpt_ext4, bootable) in a fresh WORKDIR: its
#                   package cache (Cache=) empty
#   kiln-warmpkg    kiln again, empty step cache (a cold tree), with the
#                   packages kiln-coldpkg of the same round downloaded
#   mkosi-warmpkg   mkosi again, fresh WORKDIR, with a copy of the package
#                   cache mkosi-coldpkg of the same round filled
#   kiln-minimal    (KILN_MINIMAL=1) kiln build examples/minimal, cold: more
#                   packages than mkosi's (cloud-init): not like for like
#
# The warm-package sides run only when this kiln has a package cache: an
# option of kiln build matching --package-cache / --pkg-cache / --deb-cache
# (or KILN_PKG_CACHE_OPT=--the-option), or a `kiln cache` that mentions
# packages (then the cache dir holds them: the warm side copies the cold
# side's cache dir and builds with --force, which makes the tree cold again).
# Otherwise they print "n/a". Copies are made before the timing starts.
#
#   [PAIRS=3] [WARMUP=1] [KILN_MINIMAL=1] bench/cold-vs-mkosi.sh
#
# Both sides get the same warm-up (WARMUP rounds, untimed; mkosi installs
# itself on its first use, through the anchor). Needs root, the network and
# loop devices. A round takes 10-20 minutes under load. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
PAIRS=${PAIRS:-3}
KILN=$(realpath "${KILN:-./build/kiln}")
[ -x "$KILN" ] || make -s all
ANCHOR=$(realpath "${MKOSI_ANCHOR:-../shared/anchors/mkosi/run.sh}")
[ -f "$ANCHOR" ] || bench_die "no mkosi anchor at $ANCHOR"
SPEC=$(realpath bench/specs/mkosi-equivalent.yaml)
bench_init cold-vs-mkosi
bench_kiln_env
T=$BENCH_TMP

if ! command -v mkosi >/dev/null && [ "$WARMUP" -lt 1 ]; then
        echo "mkosi is not installed yet: the anchor installs it; one warm-up round for both sides" >&2
        WARMUP=1
fi

# How this kiln caches packages, if it does.
PKG_MODE=none PKG_OPT=""
if [ -n "${KILN_PKG_CACHE_OPT:-}" ]; then
        PKG_MODE=option PKG_OPT=$KILN_PKG_CACHE_OPT
elif PKG_OPT=$("$KILN" build --help 2>&1 | grep -oE -- '--(package|packages|pkg|deb|apt)-cache(-dir)?' | head -n 1) &&
        [ -n "$PKG_OPT" ]; then
        PKG_MODE=option
elif "$KILN" cache --help 2>&1 | grep -qiE 'packages?\b|\.deb'; then
        PKG_MODE=in-cache
fi
echo "kiln's package cache: $PKG_MODE${PKG_OPT:+ ($PKG_OPT)}" >&2

kiln_build() { # DIR SPEC [ARGS...]
        local d=$1 spec=$2
        shift 2
        mkdir -p "$d"
        "$KILN" build --no-store --no-publish --cache-dir "$d/cache" --work-dir "$d/work" \
                --output-dir "$d/out" "$@" "$spec" >"$d/build.log" 2>&1 || { tail -20 "$d/build.log" >&2; return 1; }
        bench_metric image_mb "$(($(du -sm --apparent-size "$d/out" | cut -f1)))"
}
pkg_args() { # DIR: kiln build's arguments for a package cache at DIR
        [ "$PKG_MODE" != option ] || echo "$PKG_OPT $1"
}

run_kiln-coldpkg() {
        # shellcheck disable=SC2046 # pkg_args is an option and a path
        kiln_build "$T/r$1/kiln-cold" "$SPEC" $(pkg_args "$T/r$1/kiln-pkgs")
}
prepare_kiln-warmpkg() {
        case $PKG_MODE in
        option) cp -a "$T/r$1/kiln-pkgs" "$T/r$1/kiln-pkgs-warm" ;;
        in-cache) mkdir -p "$T/r$1/kiln-warm" && cp -a "$T/r$1/kiln-cold/cache" "$T/r$1/kiln-warm/cache" ;;
        esac
        sync
}
run_kiln-warmpkg() {
        # shellcheck disable=SC2046 # pkg_args is an option and a path
        case $PKG_MODE in
        option) kiln_build "$T/r$1/kiln-warm" "$SPEC" $(pkg_args "$T/r$1/kiln-pkgs-warm") ;;
        in-cache) kiln_build "$T/r$1/kiln-warm" "$SPEC" --force ;;
        esac
}
run_kiln-minimal() { kiln_build "$T/r$1/kiln-minimal" "$(realpath examples/minimal/kiln.yaml)"; }

mkosi_build() { # WORKDIR
        bash "$ANCHOR" "$1" cold >"$1.log" 2>&1 || { tail -20 "$1.log" >&2; return 1; }
        bench_metric image_mb "$(($(stat -c %s "$1/image.raw") >> 20))"
}
run_mkosi-coldpkg() { mkdir -p "$T/r$1"; mkosi_build "$T/r$1/mkosi-cold"; }
prepare_mkosi-warmpkg() {
        mkdir -p "$T/r$1/mkosi-warm"
        cp -a "$T/r$1/mkosi-cold/cache" "$T/r$1/mkosi-warm/cache"
        sync
}
run_mkosi-warmpkg() { mkosi_build "$T/r$1/mkosi-warm"; }

bench_round_end() { rm -rf "$T/r$1"; }

SIDES=(kiln-coldpkg mkosi-coldpkg)
[ "$PKG_MODE" = none ] || SIDES+=(kiln-warmpkg mkosi-warmpkg)
[ "${KILN_MINIMAL:-0}" != 1 ] || SIDES+=(kiln-minimal)
echo "bench: ${SIDES[*]}, $PAIRS rounds" >&2
bench_rounds "$PAIRS" "${SIDES[@]}"

bench_caveat "like for like: the same image (bookworm, linux-image-cloud, openssh-server, bootable"
bench_caveat "  GPT/ext4 raw), docs left out on both sides; mkosi adds its own init/udev/boot loader"
bench_caveat "  equivalents, kiln lists them (bench/specs/mkosi-equivalent.yaml); mkosi's image is UEFI-only,"
bench_caveat "  kiln's boots BIOS and UEFI"
bench_caveat "mkosi's figure includes its shim's emulated EFI mounts (~0.3-0.5 s each, 4 per build)"
bench_caveat "the floor estimated in issue 12 for a cold tree of the minimal image: 75-85 s"
bench_caveat "  (55-60 s with parallel unpack and a zstd initramfs)"
bench_report kiln-coldpkg "${SIDES[@]}"
echo
echo "ratios of medians (wall):"
echo "  cold tree, cold packages: kiln / mkosi = $(bench_ratio "$(bench_median kiln-coldpkg wall)" "$(bench_median mkosi-coldpkg wall)")"
if [ "$PKG_MODE" = none ]; then
        echo "  cold tree, warm packages: kiln / mkosi = n/a (this kiln has no package cache)"
else
        echo "  cold tree, warm packages: kiln / mkosi = $(bench_ratio "$(bench_median kiln-warmpkg wall)" "$(bench_median mkosi-warmpkg wall)")"
fi
[ "${KILN_MINIMAL:-0}" != 1 ] ||
        echo "  kiln minimal example / mkosi (not like for like) = $(bench_ratio "$(bench_median kiln-minimal wall)" "$(bench_median mkosi-coldpkg wall)")"
