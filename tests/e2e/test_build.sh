#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of `kiln build`: real mmdebstrap bootstraps from the
# machine's apt sources, real sandboxes, real Ansible, the step cache.
# Needs root. All tests share one cache so the Debian bootstrap (~15-30 s)
# happens once.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_build: needs root (namespaces, overlay mounts)"
        echo "0 passed, 1 failed"
        exit 1
fi

SHARED=$(mktemp -d /var/tmp/kiln-e2e-build.XXXXXX)
export KILN_CACHE_DIR=$SHARED/cache
e2e_cleanup_add "$SHARED"

# The spec every test builds (each test writes its own copy and edits it).
write_spec() {
        mkdir -p "$T_TMP/ansible"
        cat >"$T_TMP/ansible/site.yml" <<'YAML'
- hosts: all
  gather_facts: false
  tasks:
    - name: skipped by skip_tags (would fail the play)
      ansible.builtin.fail: {msg: "skip_tags was not passed"}
      tags: [groups, never-here]
    - name: record the groups
      tags: [groups]
      ansible.builtin.copy:
        dest: /etc/kiln-groups
        content: "{{ group_names | sort | join(' ') }} {{ role_var | default('none') }} {{ builder_only | default('unset') }}\n"
YAML
        cat >"$T_TMP/kiln.yaml" <<'YAML'
variables:
  greeting: hello
  token: {sensitive: true, default: "s3cr3t-t0ken-value"}
builds:
  base:
    source: {type: debian, suite: bookworm, variant: apt, packages: [python3]}
    steps:
      - file: {path: /etc/kiln-test, content: "${var.greeting}\n", mode: "0600", owner: "root:root"}
      - name: marker
        shell:
          - echo one > /etc/one
          - echo "token is ${var.token}"
  node:
    from: base
    matrix: {role: [login, compute]}
    steps:
      - ansible:
          playbook: ansible/site.yml
          groups: [builder, "${build.role}"]
          tags: [groups]
          skip_tags: [never-here]
          group_vars:
            builder: {builder_only: "yes"}
            login: {role_var: L}
            compute: {role_var: C}
      - name: last
        shell: "echo last > /etc/last"
YAML
}

kb() { "$KILN" build --work-dir "$T_TMP/work" "$@"; }

t_build_then_all_cached() {
        write_spec
        assert_exit 0 kb "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "3 builds ok, 0 failed" || return 1
        # the trees hold what the steps wrote
        assert_exit 0 "$KILN" shell --work-dir "$T_TMP/work" "$T_TMP/kiln.yaml" node-login -- cat /etc/kiln-groups /etc/one /etc/kiln-test /etc/last || return 1
        assert_eq "builder login L yes
one
hello
last" "$(cat "$T_OUT")" || return 1
        assert_exit 0 "$KILN" shell --work-dir "$T_TMP/work" "$T_TMP/kiln.yaml" node-compute -- stat -c '%a %U' /etc/kiln-test || return 1
        assert_eq "600 root" "$(cat "$T_OUT")" || return 1
        # the record lists packages with versions and every step's key
        assert_eq "True True" "$(python3 -c '
import json,sys; r=json.load(open(sys.argv[1]))
print(any(p["name"]=="python3" and p["version"] for p in r["packages"]), all(len(s["key"])==64 for s in r["steps"]))' "$T_TMP/work/node-login/record.json")" || return 1
        # again: nothing runs
        assert_exit 0 kb --explain "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "0 steps run, 7 cached" || return 1
        assert_not_contains "$(cat "$T_OUT")" "built" || return 1
}
run_test build-then-all-cached t_build_then_all_cached

t_edit_last_step_reruns_only_it() {
        write_spec
        assert_exit 0 kb "$T_TMP/kiln.yaml" || return 1
        sed -i 's/echo last > \/etc\/last/echo changed > \/etc\/last/' "$T_TMP/kiln.yaml"
        assert_exit 0 kb --explain "$T_TMP/kiln.yaml" || return 1
        local out; out=$(cat "$T_OUT")
        assert_contains "$out" "2 steps run" || return 1
        assert_contains "$out" "parameters changed: inline" || return 1
        assert_exit 0 "$KILN" shell --work-dir "$T_TMP/work" "$T_TMP/kiln.yaml" node-compute -- cat /etc/last || return 1
        assert_eq "changed" "$(cat "$T_OUT")" || return 1
}
run_test edit-last-step-reruns-only-it t_edit_last_step_reruns_only_it

t_playbook_change_is_explained() {
        write_spec
        assert_exit 0 kb "$T_TMP/kiln.yaml" || return 1
        echo "# edited" >>"$T_TMP/ansible/site.yml"
        assert_exit 0 kb --explain --only node-login "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "file changed: ansible" || return 1
}
run_test playbook-change-is-explained t_playbook_change_is_explained

t_failure_abort_keeps_tree_and_cache() {
        write_spec
        sed -i 's/shell: "echo last > \/etc\/last"/shell: ["echo partial > \/etc\/partial", "exit 3"]/' "$T_TMP/kiln.yaml"
        assert_exit 1 kb --on-error=abort --only node-login "$T_TMP/kiln.yaml" || return 1
        local out; out=$(cat "$T_OUT" "$T_ERR")
        assert_contains "$out" "FAILED" || return 1
        assert_contains "$out" "log: $T_TMP/work/node-login/logs/02-shell.log" || return 1
        assert_contains "$out" "kiln shell --failed" || return 1
        assert_contains "$(cat "$T_TMP/work/node-login/logs/02-shell.log")" "exit status 3" || return 1
        assert_exit 0 "$KILN" shell --failed --work-dir "$T_TMP/work" "$T_TMP/kiln.yaml" node-login -- cat /etc/partial /etc/kiln-groups || return 1
        assert_contains "$(cat "$T_OUT")" "partial" || return 1
        # fix the step: everything before it is reused
        sed -i 's/"exit 3"/"true"/' "$T_TMP/kiln.yaml"
        assert_exit 0 kb --only node-login "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "1 step run" || return 1
}
run_test failure-abort-keeps-tree-and-cache t_failure_abort_keeps_tree_and_cache

t_secrets_masked_in_logs() {
        write_spec
        assert_exit 0 kb --force --only base "$T_TMP/kiln.yaml" || return 1
        local log=$T_TMP/work/base/logs/02-shell.log
        assert_contains "$(cat "$log")" "token is <sensitive>" || return 1
        assert_not_contains "$(cat "$log" "$T_OUT" "$T_ERR")" "s3cr3t-t0ken-value" || return 1
        assert_not_contains "$(cat "$KILN_CACHE_DIR"/entries/*/meta.json)" "s3cr3t-t0ken-value" || return 1
}
run_test secrets-masked-in-logs t_secrets_masked_in_logs

t_network_off_and_isolation() {
        write_spec
        cat >>"$T_TMP/kiln.yaml" <<'YAML'
  probe:
    from: base
    steps:
      - shell:
          - "grep -c : /proc/net/dev > /etc/ifaces"
          - "hostname > /etc/seen-hostname"
          - "cat /proc/1/comm > /etc/pid1"
        network: false
YAML
        assert_exit 0 kb --only probe "$T_TMP/kiln.yaml" || return 1
        assert_exit 0 "$KILN" shell --work-dir "$T_TMP/work" "$T_TMP/kiln.yaml" probe -- cat /etc/ifaces /etc/seen-hostname || return 1
        assert_eq "1
probe" "$(cat "$T_OUT")" || return 1
        # nothing of the sandbox is left mounted
        assert_eq "" "$(grep "$T_TMP" /proc/self/mountinfo)" || return 1
}
run_test network-off-and-isolation t_network_off_and_isolation

t_kill_9_leaves_nothing() {
        write_spec
        # a duration unique to this run, so other runs' processes don't count
        local nap=$((300000 + $$))
        cat >>"$T_TMP/kiln.yaml" <<YAML
  slow:
    from: base
    steps:
      - shell: "echo started > /etc/started; sleep $nap"
YAML
        # not through kb(): $! must be kiln itself, not a subshell
        "$KILN" build --work-dir "$T_TMP/work" --only slow "$T_TMP/kiln.yaml" >"$T_TMP/out" 2>&1 &
        local pid=$! deadline=$((SECONDS + 120))
        # wait (by condition) until the step's sleep runs
        until pgrep -f "sleep $nap" >/dev/null; do
                [ $SECONDS -lt $deadline ] || { echo "the step never started"; kill -9 $pid; return 1; }
                sleep 0.2
        done
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        deadline=$((SECONDS + 10))
        while pgrep -f "sleep $nap" >/dev/null; do
                [ $SECONDS -lt $deadline ] || { echo "the step's process survived kill -9 of kiln"; return 1; }
                sleep 0.1
        done
        assert_eq "" "$(grep -h "$T_TMP" /proc/[0-9]*/mountinfo 2>/dev/null | head -3)" "mounts left behind" || return 1
        assert_eq "" "$(findmnt -rn | grep "$T_TMP")" || return 1
        # the interrupted step left no entry: a rebuild runs it (and succeeds)
        sed -i "s/sleep $nap/true/" "$T_TMP/kiln.yaml"
        assert_exit 0 kb --only slow "$T_TMP/kiln.yaml" || return 1
        assert_contains "$(cat "$T_OUT")" "1 step run" || return 1
}
run_test kill-9-leaves-nothing t_kill_9_leaves_nothing

t_cache_list_and_prune() {
        assert_exit 0 "$KILN" cache list --json || return 1
        local n; n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["entries"]))' "$T_OUT")
        [ "$n" -gt 3 ] || { echo "expected cache entries, got $n"; return 1; }
        assert_exit 0 "$KILN" cache prune --max-size 0 || return 1
        assert_contains "$(cat "$T_OUT")" "removed $n entries" || return 1
        assert_exit 0 "$KILN" cache list || return 1
        assert_contains "$(cat "$T_OUT")" "0 entries" || return 1
        assert_exit 2 "$KILN" cache prune || return 1
}
run_test cache-list-and-prune t_cache_list_and_prune

e2e_summary
