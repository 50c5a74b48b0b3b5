#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/build-cache.sh — kiln's build engine against plain mmdebstrap, in one
# run, on the same machine and apt sources:
#
#   cold     kiln build of the minimal example's tree, empty cache
#   mmdeb    mmdebstrap with the same suite, variant and package set
#   noop     kiln build again, nothing changed (every step a cache hit)
#   last     kiln build after editing the last step
#
# Prints the times and the ratios kiln/mmdebstrap (cold) and noop/cold,
# last/cold. Needs root. Usage: bench/build-cache.sh [SPEC]  (default
# examples/minimal/kiln.yaml). Not a test: nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${1:-examples/minimal/kiln.yaml}
KILN=${KILN:-./build/kiln}
[ -x "$KILN" ] || make -s all
T=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT

now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }

# the spec's first build, as kiln sees it
json=$("$KILN" inspect --json "$SPEC")
read -r suite variant pkgs < <(python3 -c '
import json,sys
b=json.loads(sys.argv[1])["builds"][0]; s=b["source"]
print(s["suite"], s.get("variant","apt"), ",".join(s.get("packages",[])) or "-")' "$json")

cp "$SPEC" "$T/spec.yaml"
# relative paths in the spec (file sources, scripts) resolve against its dir
SPECDIR=$(cd "$(dirname "$SPEC")" && pwd)
for f in "$SPECDIR"/*; do [ -e "$T/$(basename "$f")" ] || ln -s "$f" "$T/"; done

echo "bench: $SPEC (suite $suite, variant $variant)"

t0=$(now)
"$KILN" build --cache-dir "$T/cache" --work-dir "$T/work" "$T/spec.yaml" >"$T/cold.log"
t1=$(now)
cold=$(elapsed "$t0" "$t1")

inc=()
[ "$pkgs" != - ] && inc=("--include=$pkgs")
t0=$(now)
mmdebstrap --quiet --variant="$variant" "${inc[@]}" "$suite" "$T/mmdeb" >/dev/null 2>&1
t1=$(now)
mmdeb=$(elapsed "$t0" "$t1")

t0=$(now)
"$KILN" build --cache-dir "$T/cache" --work-dir "$T/work" "$T/spec.yaml" >"$T/noop.log"
t1=$(now)
noop=$(elapsed "$t0" "$t1")

# edit the last step of the first build: append a step at the end of it
printf '      - shell: "echo bench-edit > /etc/kiln-bench"\n' >"$T/extra"
python3 - "$T/spec.yaml" "$T/extra" <<'PY'
import sys
p, extra = sys.argv[1], open(sys.argv[2]).read()
lines = open(p).read().split("\n")
# insert after the last line that belongs to the first `steps:` list
out, in_steps, done = [], False, False
for i, l in enumerate(lines):
    out.append(l)
    if l.strip() == "steps:" and not done:
        in_steps = True
        indent = len(l) - len(l.lstrip())
        continue
    if in_steps and not done:
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if nxt.strip() and (len(nxt) - len(nxt.lstrip())) <= indent and not nxt.lstrip().startswith("-"):
            out.append(extra.rstrip("\n"))
            done = True
if not done:
    out.append(extra.rstrip("\n"))
open(p, "w").write("\n".join(out))
PY
t0=$(now)
"$KILN" build --explain --cache-dir "$T/cache" --work-dir "$T/work" "$T/spec.yaml" >"$T/last.log"
t1=$(now)
last=$(elapsed "$t0" "$t1")

ratio() { python3 -c 'import sys; print("%.3f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }
printf '\n%-34s %9s\n' "" "seconds"
printf '%-34s %9.2f\n' "mmdebstrap (same packages)" "$mmdeb"
printf '%-34s %9.2f\n' "kiln build, cold cache" "$cold"
printf '%-34s %9.2f\n' "kiln build, nothing changed" "$noop"
printf '%-34s %9.2f\n' "kiln build, one step added at end" "$last"
printf '\nratios: cold kiln / mmdebstrap = %s   noop / cold = %s   last-step / cold = %s\n' \
        "$(ratio "$cold" "$mmdeb")" "$(ratio "$noop" "$cold")" "$(ratio "$last" "$cold")"
grep -E "steps? run" "$T/noop.log" "$T/last.log" | sed 's/^/  /'
