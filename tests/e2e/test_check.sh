#!/usr/bin/env bash
# shellcheck disable=SC2317 # test functions are called indirectly, via run_test
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of checks: `kiln check` against the minimal example's
# built tree (offline, in the sandbox), `kiln build` failing on a failed
# check without writing an image, the JSON and JUnit reports, and — with
# one real boot under QEMU — `kiln build --boot-check` running the same
# checks inside the guest. Needs root.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_check: needs root"
        echo "0 passed, 1 failed"
        exit 1
fi

e2e_minimal_build || { echo "FAIL minimal-build"; echo "0 passed, 1 failed"; exit 1; }
export KILN_CACHE_DIR=$E2E_MIN_CACHE
SPEC=examples/minimal/kiln.yaml
kc() { "$KILN" check --work-dir "$E2E_MIN_WORK" "$@"; }

# A copy of the minimal example whose checks: names checks.yaml (written by
# each test); its steps are all in the shared cache, so a build is quick.
copy_example() {
        cp -r examples/minimal "$T_TMP/ex"
        python3 - "$T_TMP/ex/kiln.yaml" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
s, n = re.subn(r"(?m)^    checks:\n(?:      .*\n)+", "    checks: checks.yaml\n", s)
assert n == 1, "no checks: section in the example"
open(p, "w").write(s)
EOF
}

xml_ok() { python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' "$1"; }

t_offline_checks_pass() {
        assert_exit 0 kc "$SPEC" || return 1
        local out; out=$(cat "$T_OUT")
        assert_contains "$out" "minimal (tree):" || return 1
        assert_contains "$out" "ok       file     /etc/ssh/sshd_config" || return 1
        assert_contains "$out" "ok       package  openssh-server" || return 1
        assert_contains "$out" "ok       service  ssh" || return 1
        assert_contains "$out" "running: needs a booted guest" || return 1
        # as many passed as the example has checks
        local n; n=$(python3 -c '
import re,sys; s=open(sys.argv[1]).read(); m=re.search(r"(?m)^    checks:\n((?:      - .*\n)+)", s); print(len(m.group(1).splitlines()))' "$SPEC")
        [ "$n" -ge 4 ] || { echo "the example has $n checks"; return 1; }
        assert_contains "$out" "$n passed, 0 failed, 0 skipped" || return 1
}
run_test offline-checks-pass t_offline_checks_pass

t_build_records_checks() {
        local rec=$E2E_MIN_WORK/minimal/record.json xml=$E2E_MIN_WORK/minimal/checks.xml
        assert_eq "0 True" "$(python3 -c '
import json,sys; c=json.load(open(sys.argv[1]))["checks"]
print(c["failed"], c["passed"] == len(c["checks"]) and c["passed"] >= 4)' "$rec")" || return 1
        xml_ok "$xml" || return 1
        grep -q '<testcase classname="minimal.package" name="package openssh-server"' "$xml" ||
                { cat "$xml"; return 1; }
}
run_test build-records-checks t_build_records_checks

t_failed_check_fails_build() {
        copy_example
        cat >"$T_TMP/ex/checks.yaml" <<'EOF'
- file: /etc/ssh/sshd_config
- package: openssh-server
- name: no telnet daemon
  file: /usr/sbin/in.telnetd
- port: 22
EOF
        local out=$T_TMP/out work=$T_TMP/work
        assert_exit 1 "$KILN" build --work-dir "$work" -o "$out" "$T_TMP/ex/kiln.yaml" || return 1
        local err; err=$(cat "$T_ERR")
        assert_contains "$err" "kiln: minimal: checks: 1 of 4 checks failed; no image is made from it" || return 1
        assert_contains "$err" "$T_TMP/ex/checks.yaml:4:3: file /usr/sbin/in.telnetd (no telnet daemon): does not exist" || return 1
        assert_contains "$(cat "$T_OUT")" "2 passed, 1 failed, 1 skipped" || return 1
        # no image, no manifest for the build
        [ ! -e "$out/minimal/kiln-manifest.json" ] && [ ! -e "$out/minimal/minimal.qcow2" ] ||
                { ls -la "$out" "$out/minimal"; return 1; }
        # the record and the JUnit file say the same
        assert_eq "1 1 passed failed skipped" "$(python3 -c '
import json,sys; c=json.load(open(sys.argv[1]))["checks"]
print(c["failed"], c["skipped"], *[x["status"] for x in c["checks"][1:4]])' "$work/minimal/record.json")" || return 1
        xml_ok "$work/minimal/checks.xml" || return 1
        assert_eq "4 1 1" "$(python3 -c '
import xml.dom.minidom,sys; d=xml.dom.minidom.parse(sys.argv[1])
print(len(d.getElementsByTagName("testcase")), len(d.getElementsByTagName("failure")), len(d.getElementsByTagName("skipped")))' "$work/minimal/checks.xml")" || return 1
        # --no-checks builds it
        assert_exit 0 "$KILN" build --no-checks --trees-only --work-dir "$work" "$T_TMP/ex/kiln.yaml" || return 1
        assert_not_contains "$(cat "$T_OUT")" "checks     " || return 1
}
run_test failed-check-fails-build t_failed_check_fails_build

t_check_json_and_junit() {
        cat >"$T_TMP/c.yaml" <<'EOF'
file:
  /etc/ssh/sshd_config: {mode: "0644", owner: root, contains: ["/^#?PermitRootLogin/"]}
  /etc/motd: {contains: ["<&>\"' not there"]}
package:
  openssh-server: {version: ">= 1:9"}
service: [ssh]
port:
  tcp:22: {}
kernel-param:
  net.ipv4.ip_forward: {value: "0"}
EOF
        assert_exit 1 kc --json --junit "$T_TMP/j.xml" --checks "$T_TMP/c.yaml" "$SPEC" || return 1
        assert_eq "False 3 1 2 needs a booted guest,needs a booted guest" "$(python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); r=d["reports"][0]
print(d["ok"], d["passed"], d["failed"], d["skipped"], ",".join(c["detail"] for c in r["checks"] if c["status"] == "skipped"))' "$T_OUT")" || return 1
        xml_ok "$T_TMP/j.xml" || return 1
        # the failure message keeps the awkward characters, escaped
        assert_eq "does not contain <&>\"' not there" "$(python3 -c '
import xml.dom.minidom,sys; d=xml.dom.minidom.parse(sys.argv[1])
print(d.getElementsByTagName("failure")[0].getAttribute("message"))' "$T_TMP/j.xml")" || return 1
}
run_test check-json-and-junit t_check_json_and_junit

t_checks_never_change_the_tree() {
        cat >"$T_TMP/w.yaml" <<'EOF'
- command: touch /etc/kiln-check-was-here && rm -f /etc/hostname
EOF
        cat >"$T_TMP/r.yaml" <<'EOF'
- file: {path: /etc/kiln-check-was-here, exists: false}
- file: /etc/hostname
EOF
        assert_exit 0 kc --checks "$T_TMP/w.yaml" "$SPEC" || return 1
        assert_exit 0 kc --checks "$T_TMP/r.yaml" "$SPEC" || return 1
        assert_contains "$(cat "$T_OUT")" "2 passed, 0 failed" || return 1
        # and no network in the sandbox
        cat >"$T_TMP/n.yaml" <<'EOF'
- command: "grep -v -e '^ *lo:' -e '|' /proc/net/dev | grep -q :"
  exit_status: 1
EOF
        assert_exit 0 kc --checks "$T_TMP/n.yaml" "$SPEC" || return 1
}
run_test checks-never-change-the-tree t_checks_never_change_the_tree

t_check_errors() {
        printf -- '- file: /etc/hostname\n- pakage: vim\n' >"$T_TMP/bad.yaml"
        assert_exit 2 kc --checks "$T_TMP/bad.yaml" "$SPEC" || return 1
        assert_contains "$(cat "$T_ERR")" "$T_TMP/bad.yaml:2:3: error: check 2: unknown check kind 'pakage'" || return 1
        assert_contains "$(cat "$T_ERR")" "did you mean 'package'?" || return 1
        assert_exit 1 "$KILN" check --work-dir "$T_TMP/nowhere" "$SPEC" || return 1
        assert_contains "$(cat "$T_ERR")" "minimal has no finished tree" || return 1
        assert_exit 2 kc --image x --tree "$SPEC" || return 1
        assert_exit 2 "$KILN" build --checks x "$SPEC" || return 1
        assert_contains "$(cat "$T_ERR")" "is for kiln check" || return 1
}
run_test check-errors t_check_errors

# One real boot: the checks, boot-only ones included, inside the guest.
t_boot_check() {
        copy_example
        cat >"$T_TMP/ex/checks.yaml" <<'EOF'
- file: /etc/ssh/sshd_config
- service: ssh
- port: tcp:22
- mount: {path: /, filesystem: ext4, options: [rw]}
- kernel_param: kernel.ostype
  value: Linux
- command: "test \"$(systemctl is-active ssh)\" = active"
  boot_only: true
- name: nothing listens here
  port: tcp:2222
EOF
        # asked for by the spec (kiln build --boot-check does the same for every build)
        echo "    boot_check: true" >>"$T_TMP/ex/kiln.yaml"
        local out=$T_TMP/out work=$T_TMP/work store=$T_TMP/store
        export KILN_ACCEL=tcg # KVM is not dependable on every CI host
        assert_exit 1 "$KILN" build --store "$store" --work-dir "$work" -o "$out" "$T_TMP/ex/kiln.yaml" || return 1
        local so se; so=$(cat "$T_OUT"); se=$(cat "$T_ERR")
        # offline: the boot-only ones were skipped and the image was made
        assert_contains "$so" "checks     2 passed, 0 failed, 5 skipped" || return 1
        [ -f "$out/minimal/kiln-manifest.json" ] || return 1
        # in the guest: everything ran; only the deliberate failure failed
        # (plus the first, systemd's verdict: the minimal example boots clean)
        assert_contains "$so" "boot-check 7 passed, 1 failed, 0 skipped" || return 1
        assert_contains "$se" "kiln: minimal: 1 check failed in the booted image:" || return 1
        assert_contains "$se" "checks.yaml:10:3: port tcp:2222 (nothing listens here): nothing listens on tcp port 2222" || return 1
        xml_ok "$work/minimal/boot-checks.xml" || return 1
        grep -q 'name="kiln checks: minimal (guest)"' "$work/minimal/boot-checks.xml" || return 1
        # an image that failed its boot check is not delivered
        assert_contains "$se" "minimal: not stored: the boot check failed" || return 1
        [ ! -e "$store/catalog.db" ] || [ "$("$KILN" images list --store "$store" --json | python3 -c '
import json,sys; v=json.load(sys.stdin); v=v if isinstance(v, list) else v["images"]; print(len(v))')" = 0 ] ||
                t_fail "stored after a failed boot check" || return 1
}
run_test boot-check-in-guest t_boot_check

# add_failing_unit SPEC: a step (after the example's last one) that installs
# and enables a unit that exits 1 at boot, so systemd calls the boot
# "degraded". Everything before it comes from the shared cache.
add_failing_unit() {
        python3 - "$1" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
step = """      - name: a unit that fails at boot
        file:
          path: /etc/systemd/system/kiln-e2e-fail.service
          content: |
            [Unit]
            Description=kiln e2e: fails on purpose
            [Service]
            Type=oneshot
            ExecStart=/bin/false
            [Install]
            WantedBy=multi-user.target
      - name: enable it
        shell: systemctl enable kiln-e2e-fail.service
        network: false
"""
at = s.index("\n    # The disk") + 1
s = s[:at] + step + s[at:]
open(p, "w").write(s)
EOF
}

# A degraded boot fails the boot check by default, naming the failed unit,
# and `kiln boot` refuses it the same way; the spec's allow-list lets exactly
# that unit pass, and --allow-degraded lets kiln boot go on. Four real boots,
# two at a time.
t_degraded_boot() {
        cp -r examples/minimal "$T_TMP/ex"
        add_failing_unit "$T_TMP/ex/kiln.yaml" || return 1
        # (a generous deadline: TCG on a busy host can take many minutes)
        echo "    boot_check: {timeout: 40m}" >>"$T_TMP/ex/kiln.yaml"
        local out=$T_TMP/out work=$T_TMP/work store=$T_TMP/store
        export KILN_ACCEL=tcg
        assert_exit 1 "$KILN" build --store "$store" --work-dir "$work" -o "$out" "$T_TMP/ex/kiln.yaml" || return 1
        local so se; so=$(cat "$T_OUT"); se=$(cat "$T_ERR")
        # the checks passed offline: only the boot says otherwise
        assert_contains "$so" "checks     4 passed, 0 failed, 0 skipped" || return 1
        assert_contains "$so" "boot-check 4 passed, 1 failed, 0 skipped" || return 1
        assert_contains "$se" "kiln: minimal: 1 check failed in the booted image:" || return 1
        assert_contains "$se" "system running: degraded: failed unit: kiln-e2e-fail.service" || return 1
        assert_contains "$se" "minimal: not stored: the boot check failed" || return 1
        grep -q '<testcase classname="minimal.system" name="system running"' "$work/minimal/boot-checks.xml" ||
                t_fail "no system testcase in boot-checks.xml" || return 1

        # kiln boot: the same verdict before --run; --allow-degraded goes on
        local img=$out/minimal/minimal.qcow2 rb=0 ra=0
        "$KILN" boot --accel tcg --timeout 2400 --json "$img" --run 'echo should-not-run' >"$T_TMP/b.out" 2>"$T_TMP/b.err" &
        local b=$!
        "$KILN" boot --accel tcg --timeout 2400 --allow-degraded "$img" --run 'systemctl is-failed kiln-e2e-fail.service' \
                >"$T_TMP/a.out" 2>"$T_TMP/a.err" &
        local a=$!
        # meanwhile, the opt-out in the spec, narrow: this unit may fail
        # (the image is complete: it is not made again, only booted)
        sed -i 's/^    boot_check: {timeout: 40m}$/    boot_check: {timeout: 40m, allow_failed_units: [kiln-e2e-fail]}/' "$T_TMP/ex/kiln.yaml"
        assert_exit 0 "$KILN" build --store "$store" --work-dir "$work" -o "$out" "$T_TMP/ex/kiln.yaml" || return 1
        so=$(cat "$T_OUT")
        assert_contains "$so" "boot-check 5 passed, 0 failed, 0 skipped" || return 1
        python3 - "$work/minimal/boot-checks.xml" <<'EOF' || t_fail "system testcase not passed" || return 1
import sys, xml.dom.minidom
d = xml.dom.minidom.parse(sys.argv[1])
tc = [t for t in d.getElementsByTagName("testcase") if t.getAttribute("name") == "system running"]
assert len(tc) == 1 and not tc[0].getElementsByTagName("failure"), tc
EOF
        wait "$b" || rb=$?
        wait "$a" || ra=$?
        assert_eq 1 "$rb" "kiln boot of a degraded guest"$'\n'"$(cat "$T_TMP/b.err")" || return 1
        assert_contains "$(cat "$T_TMP/b.err")" "kiln boot: the boot is not clean: degraded: failed unit: kiln-e2e-fail.service" || return 1
        assert_not_contains "$(cat "$T_TMP/b.out")" "should-not-run" || return 1
        assert_eq "degraded ['kiln-e2e-fail.service'] degraded" "$(python3 -c '
import json, sys; j = json.load(sys.stdin)
print(j["system_state"], j["failed_units"], j["result"])' <"$T_TMP/b.out")" || return 1
        assert_eq 0 "$ra" "kiln boot --allow-degraded"$'\n'"$(cat "$T_TMP/a.err")" || return 1
        assert_eq failed "$(cat "$T_TMP/a.out")" || return 1
        assert_contains "$(cat "$T_TMP/a.err")" "kiln boot: warning: degraded: failed unit: kiln-e2e-fail.service" || return 1
}
run_test degraded-boot-fails-boot-check t_degraded_boot

# boot_check: options are checked like the rest of the spec, and located.
t_boot_check_option_errors() {
        cp -r examples/minimal "$T_TMP/ex"
        printf '    boot_check:\n      allow_degraded: yes\n      allow_failed_units: [ok.service, "no spaces"]\n' \
                >>"$T_TMP/ex/kiln.yaml"
        local n; n=$(grep -c '' "$T_TMP/ex/kiln.yaml")
        assert_exit 2 "$KILN" validate "$T_TMP/ex/kiln.yaml" || return 1
        assert_contains "$(cat "$T_ERR")" "kiln.yaml:$((n - 1)):23: error: build 'minimal': boot_check: allow_degraded: expected a boolean" || return 1
        assert_contains "$(cat "$T_ERR")" "kiln.yaml:$n:40: error: build 'minimal': boot_check: allow_failed_units: 'no spaces' has a character" || return 1
        assert_exit 2 "$KILN" validate --allow-degraded "$T_TMP/ex/kiln.yaml" || return 1
        assert_contains "$(cat "$T_ERR")" "'--allow-degraded' is for kiln build and kiln check" || return 1
}
run_test boot-check-option-errors t_boot_check_option_errors

e2e_summary
