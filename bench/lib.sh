# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# bench/lib.sh — what every bench/*.sh shares; sourced, never run.
#
#   bench_init NAME            a private temp dir ($BENCH_TMP, under
#                              $BENCH_DIR, default /var/tmp) removed on exit,
#                              with the cleanups registered by bench_on_exit
#                              run first (last registered, first run)
#   bench_kiln_env             points every default location kiln could write
#                              to (store, step cache, HOME) into $BENCH_TMP
#   bench_rounds N SIDE...     N rounds of SIDE... in order (A B A B ...):
#                              each run calls the function run_SIDE with the
#                              round number; $WARMUP (default 1) untimed
#                              rounds first (round 0), for every side
#                              alike; bench_round_end ROUND, when the
#                              script defines it, runs untimed after each;
#                              so does prepare_SIDE ROUND before each run
#   bench_metric NAME VALUE    from a run_ function: an extra figure of
#                              this run (bytes, MiB/s, a phase's seconds)
#   bench_report REF SIDE...   per side: runs, median and spread (min-max)
#                              of the wall time, CPU time and every metric,
#                              the ratio of medians to REF, and the load
#   bench_table REF SIDE...    that table alone (a script comparing several
#                              groups prints one each, then bench_footer)
#   bench_footer SIDE...       the load part of the report and the caveats
#                              alone (for a script that prints its own table)
#   bench_median SIDE FIELD    the median of one field (wall, cpu, a metric)
#   bench_field SIDE FIELD     every run's value of one field, a line each
#   bench_stats                "median min max" of the numbers on stdin
#   bench_caveat TEXT          a line printed under the report's ratios
#   bench_measure OUT CMD...   from a run_ function: CMD under /usr/bin/time,
#                              its peak RSS as metric rss_kib and, unless OUT
#                              is -, OUT's size as size_b (CMD's stdout is
#                              dropped, its stderr shown only on failure)
#   bench_make_raw FILE SIZE_MIB FILL_MIB
#                              a sparse raw test image: FILL_MIB of real file
#                              content (a tar of /usr) at 4 MiB slots picked
#                              at random, the same slots on every run
#   bench_image_driver OUT     compiles bench/qcow2-driver.c (one kiln format
#                              writer on one file) against src/base, os,
#                              spec and image, in $BENCH_TMP: no make needed
#
# Timing: wall time from $EPOCHREALTIME around the run; CPU time (user +
# system) from the shell's getrusage(RUSAGE_CHILDREN) — bash's `times` —
# before and after, so it counts every process the run waited for (not
# daemons started elsewhere, e.g. a test server). Load: /proc/loadavg's
# 1-minute figure and /proc/pressure/cpu's "some avg10" before and after
# every run; the report prints them beside each run.
#
# Results live in $BENCH_TMP/results/SIDE, one line per run:
#   round wall cpu load_before load_after psi_before psi_after [name=value...]
# BENCH_KEEP=DIR copies them to DIR at exit (also when stopped half-way).

BENCH_DIR=${BENCH_DIR:-/var/tmp}
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WARMUP=${WARMUP:-1}
BENCH_CLEANUPS=()
BENCH_CAVEATS=()
BENCH_TMP=""

bench_die() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 1; }

bench_cleanup() {
        local i
        for ((i = ${#BENCH_CLEANUPS[@]} - 1; i >= 0; i--)); do
                eval "${BENCH_CLEANUPS[i]}" || true
        done
        BENCH_CLEANUPS=()
        [ -z "$BENCH_TMP" ] || [ -z "${BENCH_KEEP:-}" ] || cp -r "$BENCH_TMP/results" "$BENCH_KEEP" || true
        [ -z "$BENCH_TMP" ] || rm -rf "$BENCH_TMP"
}

bench_init() {
        BENCH_NAME=$1
        BENCH_TMP=$(mktemp -d "$BENCH_DIR/kiln-bench-$1.XXXXXX")
        mkdir -p "$BENCH_TMP/results"
        trap bench_cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
}

# bench_on_exit CMD — CMD (a string, eval'ed) runs at exit before the temp
# dir is removed: stop a server, unmount, kill a VM.
bench_on_exit() { BENCH_CLEANUPS+=("$1"); }

bench_kiln_env() {
        mkdir -p "$BENCH_TMP/home" "$BENCH_TMP/xdg-cache" "$BENCH_TMP/store"
        export HOME=$BENCH_TMP/home XDG_CACHE_HOME=$BENCH_TMP/xdg-cache \
                XDG_DATA_HOME=$BENCH_TMP/home/.local/share \
                KILN_STORE_DIR=$BENCH_TMP/store KILN_CACHE_DIR=$BENCH_TMP/xdg-cache/kiln
}

bench_caveat() { BENCH_CAVEATS+=("$1"); }

# BENCH_CPU: seconds of children CPU (user + system) so far, from `times`
# run in this shell (in a subshell, $(...), it would see none of its
# parent's children)
bench_children_cpu() {
        times >"$BENCH_TMP/.times"
        BENCH_CPU=$(awk 'NR == 2 {
                n = 0
                for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
                printf "%.3f", n
        }' "$BENCH_TMP/.times")
}

bench_load1() { cut -d' ' -f1 /proc/loadavg; }
bench_psi() {
        if [ -r /proc/pressure/cpu ]; then
                sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/cpu
        else
                echo -
        fi
}

BENCH_EXTRA=""
bench_metric() { BENCH_EXTRA+=" $1=$2"; }

# bench_run SIDE ROUND — one timed run of run_SIDE.
bench_run() {
        local side=$1 round=$2 l0 p0 c0 t0 t1 c1 rc=0
        ! declare -F "prepare_$side" >/dev/null || "prepare_$side" "$round" || bench_die "preparing $side failed"
        BENCH_EXTRA=""
        l0=$(bench_load1) p0=$(bench_psi)
        bench_children_cpu
        c0=$BENCH_CPU t0=$EPOCHREALTIME
        "run_$side" "$round" || rc=$?
        t1=$EPOCHREALTIME
        bench_children_cpu
        c1=$BENCH_CPU
        [ "$rc" -eq 0 ] || bench_die "$side failed in round $round (exit $rc)"
        awk -v r="$round" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v l0="$l0" \
                -v l1="$(bench_load1)" -v p0="$p0" -v p1="$(bench_psi)" -v x="$BENCH_EXTRA" \
                'BEGIN { printf "%d %.6f %.3f %s %s %s %s%s\n", r, t1 - t0, c1 - c0, l0, l1, p0, p1, x }' \
                >>"$BENCH_TMP/results/$side"
        [ -n "${BENCH_QUIET:-}" ] || printf '  round %d %-24s %9.2f s   load %s -> %s\n' "$round" "$side" \
                "$(tail -n 1 "$BENCH_TMP/results/$side" | cut -d' ' -f2)" "$l0" "$(bench_load1)" >&2
}

BENCH_GROUPS=()
bench_rounds() {
        local n=$1 i side IFS=' '
        shift
        BENCH_GROUPS+=("$n rounds of: $*")
        for ((i = 1; i <= WARMUP; i++)); do
                for side in "$@"; do
                        [ -n "${BENCH_QUIET:-}" ] || echo "  warm-up $i: $side (not counted)" >&2
                        ! declare -F "prepare_$side" >/dev/null || "prepare_$side" 0 || bench_die "preparing $side failed"
                        "run_$side" 0 >/dev/null || bench_die "warm-up of $side failed"
                done
                ! declare -F bench_round_end >/dev/null || bench_round_end 0
        done
        for ((i = 1; i <= n; i++)); do
                for side in "$@"; do bench_run "$side" "$i"; done
                ! declare -F bench_round_end >/dev/null || bench_round_end "$i"
        done
}

# bench_field SIDE FIELD — one value per line: wall, cpu or a metric
bench_field() {
        local f=$BENCH_TMP/results/$1
        [ -f "$f" ] || return 0
        awk -v k="$2" '{
                if (k == "wall") print $2; else if (k == "cpu") print $3
                else for (i = 8; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2)
        }' "$f"
}

# stats: median min max of numbers on stdin ("-" when there are none)
bench_stats() {
        sort -g | awk '{ v[NR] = $1 } END {
                if (NR == 0) { print "- - -"; exit }
                m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.6g %.6g %.6g\n", m, v[1], v[NR]
        }'
}

bench_median() { bench_field "$1" "$2" | bench_stats | cut -d' ' -f1; }

# the metric names a side recorded, in first-seen order
bench_metric_names() {
        [ -f "$BENCH_TMP/results/$1" ] || return 0
        awk '{ for (i = 8; i <= NF; i++) { split($i, a, "="); if (!(a[1] in s)) { s[a[1]]; print a[1] } } }' \
                "$BENCH_TMP/results/$1"
}

bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "n/a"; else printf "%.3f", a / b }'; }

# bench_report REF SIDE... — REF is one of the SIDEs (or "" for no ratios)
bench_report() {
        bench_table "$@"
        shift
        bench_footer "$@"
}

bench_table() {
        local ref=$1 side field s m lo hi
        shift
        echo
        printf '%-26s %-12s %4s %10s %10s %10s %8s %9s\n' side figure runs median min max spread \
                "x ${ref:-ref}"
        for side in "$@"; do
                for field in wall cpu $(bench_metric_names "$side"); do
                        read -r m lo hi < <(bench_field "$side" "$field" | bench_stats)
                        [ "$m" != - ] || continue
                        s=$(awk -v m="$m" -v lo="$lo" -v hi="$hi" \
                                'BEGIN { if (m == 0) print "-"; else printf "%.0f%%", (hi - lo) / m * 100 }')
                        printf '%-26s %-12s %4d %10.4g %10.4g %10.4g %8s %9s\n' "$side" "$field" \
                                "$(bench_field "$side" "$field" | wc -l)" "$m" "$lo" "$hi" "$s" \
                                "$([ -n "$ref" ] && bench_ratio "$m" "$(bench_median "$ref" "$field")" || echo -)"
                done
        done
        echo "(wall and cpu in seconds; cpu = user + system of the run's processes;"
        echo " spread = (max - min) / median; x REF = this side's median / REF's median)"
}

# bench_footer SIDE... — the load beside each run, its range, the caveats
bench_footer() {
        local side c
        echo
        echo "load per run (1-min load average and CPU pressure 'some avg10' %, before -> after), $(nproc) CPUs:"
        for side in "$@"; do
                [ -f "$BENCH_TMP/results/$side" ] || continue
                awk -v s="$side" '{ r[NR] = sprintf("  %-26s round %-3d load %5s -> %-5s  psi %6s -> %-6s", s, $1, $4, $5, $6, $7) }
                        END { if (NR <= 12) for (i = 1; i <= NR; i++) print r[i]
                              else printf "  %-26s %d runs (the range of all runs is below)\n", s, NR }' \
                        "$BENCH_TMP/results/$side"
        done
        cat "$BENCH_TMP"/results/* | awk '{
                for (i = 4; i <= 5; i++) { if (n == 0 || $i < lmin) lmin = $i; if (n == 0 || $i > lmax) lmax = $i; n++ }
                if ($6 != "-") for (i = 6; i <= 7; i++) { if (k == 0 || $i < pmin) pmin = $i; if (k == 0 || $i > pmax) pmax = $i; k++ } }
                END { printf "load average over the runs: %s-%s; CPU pressure some avg10: %s-%s %%\n", lmin, lmax, (k ? pmin : "-"), (k ? pmax : "-") }'
        echo
        echo "caveats:"
        echo "  - interleaved, each round running every side once, in this order (after ${WARMUP} untimed"
        echo "    warm-up round(s) of every side):"
        for c in "${BENCH_GROUPS[@]}"; do echo "      $c"; done
        echo "    load from other work on the machine hits the sides alike only on average: read the spread"
        for c in "${BENCH_CAVEATS[@]}"; do
                case $c in "  "*) echo "  $c" ;; *) echo "  - $c" ;; esac
        done
}

bench_measure() {
        local out=$1
        shift
        /usr/bin/time -f %M -o "$BENCH_TMP/.rss" "$@" >/dev/null 2>"$BENCH_TMP/.err" ||
                { cat "$BENCH_TMP/.err" >&2; return 1; }
        bench_metric rss_kib "$(tail -n 1 "$BENCH_TMP/.rss")"
        [ "$out" = - ] || bench_metric size_b "$(stat -c %s "$out")"
}

bench_make_raw() {
        local file=$1 size=$2 fill=$(($3 / 4)) i=0 slot
        echo "making a $size MiB test image with $((fill * 4)) MiB of /usr ..." >&2
        tar -C / -cf - usr 2>/dev/null | head -c "$((fill * 4))M" >"$BENCH_TMP/.content" || true
        truncate -s "${size}M" "$file"
        for slot in $(shuf -i "0-$((size / 4 - 1))" -n "$fill" --random-source=<(yes)); do
                dd if="$BENCH_TMP/.content" of="$file" bs=4M skip=$i seek="$slot" count=1 \
                        conv=notrunc status=none
                i=$((i + 1))
        done
        rm -f "$BENCH_TMP/.content"
}

# Each source is compiled to its own object in a private archive (src/spec
# and src/image both have a section.c); the link takes from it only what the
# writers need, so no net/db library is wanted.
bench_image_driver() {
        local out=$1 d=$BENCH_TMP/.driver f o cflags libs
        cflags=$(pkg-config --cflags libzstd zlib liblzma libcrypto yaml-0.1 2>/dev/null || true)
        libs=$(pkg-config --libs libzstd zlib liblzma libcrypto yaml-0.1 2>/dev/null ||
                echo -lzstd -lz -llzma -lcrypto -lyaml)
        mkdir -p "$d"
        for f in "$BENCH_ROOT"/src/{base,os,spec,image}/*.c; do
                o=${f#"$BENCH_ROOT"/src/}
                o=$d/${o//\//-}.o
                # shellcheck disable=SC2086 # the pkg-config flags are lists
                gcc -std=gnu11 -O2 -D_GNU_SOURCE -I"$BENCH_ROOT/src" $cflags -c -o "$o" "$f" ||
                        bench_die "cannot compile $f"
        done
        ar rcs "$d/libbench.a" "$d"/*.o
        # shellcheck disable=SC2086
        gcc -std=gnu11 -O2 -D_GNU_SOURCE -I"$BENCH_ROOT/src" $cflags -o "$out" \
                "$BENCH_ROOT/bench/qcow2-driver.c" "$d/libbench.a" $libs -lpthread -lm ||
                bench_die "cannot link the driver"
}
