#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/build-cache.sh — kiln's build engine against plain mmdebstrap making
# the same tree, and kiln's step cache against kiln's cold build, in rounds
# interleaved on the same machine (bench/lib.sh):
#
#   kiln-cold   kiln build --trees-only of SPEC's first build, empty step
#               cache, empty work dir (and every other kiln default location
#               in the bench's temp dir: nothing is warm)
#   mmdebstrap  mmdebstrap with the same suite, variant, architecture,
#               components and packages, and the same docs policy as the
#               tree kiln made (the path-exclude/path-include lines kiln's
#               tree carries in /etc/dpkg/dpkg.cfg.d/, passed as --dpkgopt);
#               downloads every package, as kiln-cold does
#   kiln-noop   kiln build again on kiln-cold's cache: every step a hit
#   kiln-last   kiln build after adding one step at the end of the build
#
# Ratios: kiln-cold / mmdebstrap (the engine's cost over the bootstrap it
# runs), noop / cold and last / cold (the step cache). kiln-cold also runs
# SPEC's steps (a few seconds) and stores each in the step cache; neither
# side writes a disk image. Needs root and the network (package mirror).
#
#   [PAIRS=3] [WARMUP=1] bench/build-cache.sh [SPEC]   (default examples/minimal/kiln.yaml)
#
# Work space: a temp dir under BENCH_DIR (default /var/tmp), removed at the
# end; a cold round needs ~2 GB. Not a test: nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
SPEC=${1:-examples/minimal/kiln.yaml}
PAIRS=${PAIRS:-3}
KILN=$(realpath "${KILN:-./build/kiln}")
[ -x "$KILN" ] || make -s all
bench_init build-cache
bench_kiln_env
T=$BENCH_TMP

# the spec's first build, as kiln sees it
read -r BUILD SUITE VARIANT ARCH COMPS PKGS MIRROR < <("$KILN" inspect --json "$SPEC" | python3 -c '
import json, sys
b = json.load(sys.stdin)["builds"][0]; s = b["source"]
print(b["name"], s["suite"], s.get("variant", "apt"), b.get("debian_arch", "-"),
      ",".join(s.get("components", [])) or "-", ",".join(s.get("packages", [])) or "-",
      s.get("mirror") or "-")')
[ "${MIRROR#deb}" = "$MIRROR" ] || bench_die "a full sources.list line as mirror: not supported here"

# the spec in the temp dir (the last-step side edits it); relative paths in
# it (file sources, scripts) resolve against its directory
SPECDIR=$(cd "$(dirname "$SPEC")" && pwd)
mkdir -p "$T/spec"
for f in "$SPECDIR"/*; do ln -s "$f" "$T/spec/"; done
rm "$T/spec/$(basename "$SPEC")"
cp "$SPEC" "$T/spec/kiln.yaml"
cp "$SPEC" "$T/spec/kiln-last.yaml"
# one step more at the end of the first build's steps
python3 - "$T/spec/kiln-last.yaml" <<'PY'
import sys
p = sys.argv[1]
extra = '      - shell: "echo bench-edit > /etc/kiln-bench"'
lines = open(p).read().split("\n")
out, in_steps, done = [], False, False
for i, l in enumerate(lines):
    out.append(l)
    if l.strip() == "steps:" and not done:
        in_steps, indent = True, len(l) - len(l.lstrip())
        continue
    if in_steps and not done:
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if nxt.strip() and (len(nxt) - len(nxt.lstrip())) <= indent and not nxt.lstrip().startswith("-"):
            out.append(extra)
            done = True
if not done:
    out.append(extra)
open(p, "w").write("\n".join(out))
PY

kiln_build() { # ROUND SPEC LOG
        "$KILN" build --trees-only --no-checks --no-store --no-publish --only "$BUILD" \
                --cache-dir "$T/r$1/cache" --work-dir "$T/r$1/work" --output-dir "$T/r$1/out" \
                "$2" >"$T/r$1/$3.log" 2>&1 || { tail -20 "$T/r$1/$3.log" >&2; return 1; }
}
run_kiln-cold() { mkdir -p "$T/r$1"; kiln_build "$1" "$T/spec/kiln.yaml" cold; }
run_kiln-noop() { kiln_build "$1" "$T/spec/kiln.yaml" noop; }
run_kiln-last() { kiln_build "$1" "$T/spec/kiln-last.yaml" last; }

# The docs policy of kiln's tree: its dpkg path filters, as mmdebstrap
# options. Read once, from the first cold tree in the step cache.
DPKGOPTS=()
docs_policy() {
        [ -z "${DOCS_READ:-}" ] || return 0
        local f
        while read -r f; do
                while read -r line; do DPKGOPTS+=("--dpkgopt=$line"); done < <(grep -hE '^path-(ex|in)clude' "$f")
        done < <(find "$T/r$1/cache" -path '*/etc/dpkg/dpkg.cfg.d/*' -type f 2>/dev/null | sort | head -n 4)
        DOCS_READ=1
        echo "mmdebstrap's docs policy, from kiln's tree: ${#DPKGOPTS[@]} dpkg path filters" >&2
}
run_mmdebstrap() {
        docs_policy "$1"
        local a=(--quiet --mode=root "--variant=$VARIANT")
        [ "$ARCH" = - ] || a+=("--architectures=$ARCH")
        [ "$COMPS" = - ] || a+=("--components=$COMPS")
        [ "$PKGS" = - ] || a+=("--include=$PKGS")
        local m=()
        [ "$MIRROR" = - ] || m=("$MIRROR")
        mmdebstrap "${a[@]}" "${DPKGOPTS[@]}" "$SUITE" "$T/r$1/mmdeb" "${m[@]}" >"$T/r$1/mmdeb.log" 2>&1 ||
                { tail -20 "$T/r$1/mmdeb.log" >&2; return 1; }
}
# each round's trees and cache go once the round is over (untimed)
bench_round_end() {
        grep -hE "steps? run" "$T/r$1/noop.log" "$T/r$1/last.log" 2>/dev/null | sed "s/^/  round $1: /" >&2 || true
        rm -rf "$T/r$1"
}

echo "bench: $SPEC, build $BUILD (suite $SUITE, variant $VARIANT), $PAIRS rounds" >&2
bench_rounds "$PAIRS" kiln-cold mmdebstrap kiln-noop kiln-last
bench_caveat "like for like: same suite, variant, packages and docs policy (${#DPKGOPTS[@]} dpkg path filters"
bench_caveat "  read from kiln's tree); both cold (no package cache, no step cache); no disk image on either side"
bench_caveat "kiln-cold also runs the spec's steps and snapshots each into the step cache: the ratio"
bench_caveat "  kiln-cold / mmdebstrap is kiln's whole cost over its bootstrap, not the bootstrap alone"
bench_caveat "both sides download the packages from the mirror: its speed is in both figures"
bench_report kiln-cold kiln-cold mmdebstrap kiln-noop kiln-last
echo
echo "ratios of medians: kiln-cold / mmdebstrap = $(bench_ratio "$(bench_median kiln-cold wall)" "$(bench_median mmdebstrap wall)")" \
        "  noop / cold = $(bench_ratio "$(bench_median kiln-noop wall)" "$(bench_median kiln-cold wall)")" \
        "  last-step / cold = $(bench_ratio "$(bench_median kiln-last wall)" "$(bench_median kiln-cold wall)")"
