#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of what a caller sees of a `kiln build` run: the event
# stream as JSON lines (--events FILE, --json), the text view's step
# counters, failures (the end of the step's log, a `kiln shell --failed`
# command that works), heartbeats when stdout is not a terminal, and
# build selection by id. The trees are tiny busybox trees from a tarball
# source, so nothing waits for a Debian bootstrap. Needs root.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_events: needs root (namespaces, overlay mounts)"
        echo "0 passed, 1 failed"
        exit 1
fi
if [ ! -x /bin/busybox ]; then
        echo "test_events: needs /bin/busybox (busybox-static)"
        echo "0 passed, 1 failed"
        exit 1
fi

SHARED=$(mktemp -d /var/tmp/kiln-e2e-events.XXXXXX)
e2e_cleanup_add "$SHARED"
e2e_busybox_tarball "$SHARED"

# write_spec — two builds (a matrix); the second step runs only in small-b.
write_spec() {
        cp "$SHARED/busybox.tar.gz" "$T_TMP/busybox.tar.gz"
        cat >"$T_TMP/kiln.yaml" <<'YAML'
variables:
  greeting: {default: hi}
  token: {sensitive: true, default: "t0ken-default"}
builds:
  small:
    matrix: {role: [a, b]}
    source: {type: tarball, path: busybox.tar.gz}
    steps:
      - shell: "echo ${var.greeting} > /etc/greeting"
      - name: only in b
        only: [small-b]
        shell: "echo b > /etc/b"
      - name: last
        shell: "echo last > /etc/last"
    checks:
      - file: /etc/greeting
YAML
}

kb() {
        KILN_CACHE_DIR=$T_TMP/cache "$KILN" build --work-dir "$T_TMP/work" --no-store --no-publish "$@"
}

t_events_file() {
        write_spec
        assert_exit 0 kb --events "$T_TMP/ev.jsonl" "$T_TMP/kiln.yaml" || return 1
        # the text view is unchanged by --events
        assert_contains "$(cat "$T_OUT")" "2 builds ok, 0 failed, 0 skipped; 5 steps run, 2 cached" || return 1
        python3 - "$T_TMP/ev.jsonl" <<'PY' || return 1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
types = [e["type"] for e in ev]
assert types[0] == "run_started" and types[-1] == "run_finished", types
assert ev[0]["timestamp"].endswith("Z") and ev[0]["builds"] == 2, ev[0]
assert all(isinstance(e["time"], int) for e in ev)
for b, nsteps in (("small-a", 2), ("small-b", 3)):
    mine = [e for e in ev if e.get("build") == b]
    t = [e["type"] for e in mine]
    # every step starts, then finishes (or comes from the cache)
    steps = [e for e in mine if e["type"] in ("step_finished", "step_cached")]
    assert [s["position"] for s in steps] == list(range(nsteps + 1)), (b, steps)
    assert all(s["count"] == nsteps for s in steps), steps
    for s in steps:
        if s["type"] == "step_finished":
            assert s["status"] == "built" and s["elapsed_ms"] >= 0 and s["log"], s
            assert t.index("step_started") < t.index("step_finished"), t
    # the checks come after the last step, then the tree is finished
    assert t.index("checks") > max(i for i, x in enumerate(t) if x.startswith("step_")), t
    assert t[-1] == "tree_finished" and mine[-1]["status"] == "ok", t
    c = mine[t.index("checks")]
    assert c["passed"] == 1 and c["failed"] == 0 and "elapsed_ms" in c, c
fin = ev[-1]
assert (fin["ok"], fin["failed"], fin["steps_run"], fin["steps_cached"]) == (2, 0, 5, 2), fin
assert fin["timestamp"] == ev[0]["timestamp"] and fin["elapsed_ms"] >= 0, fin
assert [x["status"] for x in fin["builds"]] == ["ok", "ok"], fin
PY
        # the record keeps the run's timestamp too
        assert_eq "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["timestamp"])' "$T_TMP/ev.jsonl")" \
                "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["timestamp"])' "$T_TMP/work/small-a/record.json")" || return 1
}
run_test events-file t_events_file

t_json_on_stdout() {
        write_spec
        assert_exit 0 kb --json "$T_TMP/kiln.yaml" || return 1
        python3 - "$T_OUT" <<'PY' || return 1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
t = [e["type"] for e in ev]
assert t[0] == "run_started" and t[-1] == "run_finished", t
assert t.count("step_started") == 5 and t.count("tree_finished") == 2, t
PY
        # a second run: all cached, still one line per event
        assert_exit 0 kb --json "$T_TMP/kiln.yaml" || return 1
        python3 - "$T_OUT" <<'PY' || return 1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
t = [e["type"] for e in ev]
assert "step_started" not in t and t.count("step_cached") == 7, t
assert ev[-1]["steps_run"] == 0 and ev[-1]["steps_cached"] == 7, ev[-1]
PY
        # a bad spec: exit 2 with the diagnostics, as kiln validate --json
        printf 'builds:\n  x:\n    sourc: {}\n' >"$T_TMP/bad.yaml"
        assert_exit 2 kb --json "$T_TMP/bad.yaml" || return 1
        assert_eq "False 1" "$(python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); print(d["valid"], d["errors"] >= 1)' "$T_OUT" | sed 's/True/1/')" || return 1
        assert_contains "$(cat "$T_OUT")" "sourc" || return 1
}
run_test json-on-stdout t_json_on_stdout

t_failure_shows_log_and_shell_command() {
        write_spec
        sed -i 's|shell: "echo last > /etc/last"|shell: ["echo partial > /etc/partial", "echo the-reason-it-broke", "exit 3"]|' "$T_TMP/kiln.yaml"
        printf 'greeting: hello\n' >"$T_TMP/vars.yaml"
        assert_exit 1 kb --on-error=abort --var-file "$T_TMP/vars.yaml" --var greeting=hey --var token=s3cr3t-value \
                --only small-a --events "$T_TMP/ev.jsonl" "$T_TMP/kiln.yaml" || return 1
        local err; err=$(cat "$T_ERR")
        # the counter counts the steps this build runs (only: dropped one)
        assert_contains "$(cat "$T_OUT")" "small-a   2/2 shell" || return 1
        assert_contains "$err" "kiln:   | the-reason-it-broke" || return 1
        assert_contains "$err" "log: $T_TMP/work/small-a/logs/03-shell.log" || return 1
        assert_contains "$err" "--var-file $T_TMP/vars.yaml" || return 1
        assert_contains "$err" "(values not shown): greeting token" || return 1
        assert_not_contains "$err$(cat "$T_TMP/ev.jsonl")" "s3cr3t-value" || return 1
        # the suggested command works as printed (plus the --var of the run)
        local cmd; cmd=$(sed -n 's/^kiln:   kiln shell --failed /shell --failed /p' "$T_ERR")
        [ -n "$cmd" ] || t_fail "no kiln shell command in:"$'\n'"$err" || return 1
        eval "KILN_CACHE_DIR=\$T_TMP/cache \"\$KILN\" $cmd --var greeting=hey --var token=s3cr3t-value -- cat /etc/partial" \
                >"$T_TMP/sh.out" 2>&1 || { cat "$T_TMP/sh.out"; return 1; }
        assert_eq "partial" "$(cat "$T_TMP/sh.out")" || return 1
        python3 - "$T_TMP/ev.jsonl" <<'PY' || return 1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
tf = [e for e in ev if e["type"] == "tree_finished"][0]
assert tf["status"] == "failed" and "the-reason-it-broke" in tf["log_tail"] and tf["log"].endswith("03-shell.log"), tf
assert ev[-1]["failed"] == 1 and ev[-1]["builds"][0]["status"] == "tree-failed", ev[-1]
PY
}
run_test failure-shows-log-and-shell-command t_failure_shows_log_and_shell_command

t_heartbeat_when_not_a_terminal() {
        write_spec
        sed -i 's|shell: "echo last > /etc/last"|shell: ["echo started", "sleep 3"]|' "$T_TMP/kiln.yaml"
        KILN_HEARTBEAT_S=1 assert_exit 0 kb --only small-a "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "small-a step 2/2 shell still running (" || return 1
}
run_test heartbeat-when-not-a-terminal t_heartbeat_when_not_a_terminal

t_only_takes_the_id() {
        write_spec
        # a name that changes with the time; the id (key + matrix values) does not
        sed -i 's|^    matrix: {role: \[a, b\]}|&\n    name: "img-${build.role}-${formatdate(\\"hhmmss\\", timestamp)}"|' "$T_TMP/kiln.yaml"
        assert_exit 0 kb --only small-b "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "1 build ok" || return 1
        assert_contains "$(cat "$T_OUT")" "img-b-" || return 1
        assert_not_contains "$(cat "$T_OUT")" "img-a-" || return 1
}
run_test only-takes-the-id t_only_takes_the_id

e2e_summary
