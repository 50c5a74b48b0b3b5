#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of `kiln cidata`: the seed ISOs kiln writes itself are
# read back by the tools users trust — isoinfo (genisoimage), xorriso,
# isovfy, blkid — names, labels and bytes must survive; generated
# documents must be YAML cloud-init accepts; bad input fails clearly.
. "$(dirname "$0")/lib.sh"

mk_inputs() {
        printf '#cloud-config\npackages: [htop]\nruncmd:\n  - [sh, -c, "echo seeded > /run/kiln-seed"]\n' >"$T_TMP/ud"
        printf 'instance-id: iid-e2e\nlocal-hostname: e2e-node\n' >"$T_TMP/md"
        printf 'version: 2\nethernets:\n  eth0: {dhcp4: true}\n' >"$T_TMP/nc"
        printf '#cloud-config\ntimezone: UTC\n' >"$T_TMP/vd"
}

# iso_names -J|-R ISO — every name isoinfo lists in every directory, sorted
iso_names() {
        isoinfo "$1" -l -i "$2" | awk '/^Directory listing/ { next } NF >= 12 { print $NF }' | grep -v '^\.\.\?$' | sort | tr '\n' ' '
}

t_seed_from_files() {
        mk_inputs
        local iso=$T_TMP/seed.iso
        assert_exit 0 "$KILN_SAN" cidata -o "$iso" --user-data "$T_TMP/ud" --meta-data "$T_TMP/md" \
                --network-config "$T_TMP/nc" --vendor-data "$T_TMP/vd" || return 1
        assert_contains "$(cat "$T_OUT")" "wrote $iso" || return 1
        assert_exit 0 isoinfo -d -i "$iso" || return 1
        local d
        d=$(cat "$T_OUT")
        assert_contains "$d" "Volume id: cidata" || return 1
        assert_contains "$d" "Joliet with UCS level 3 found" || return 1
        assert_contains "$d" "Rock Ridge signatures version 1 found" || return 1
        assert_contains "$d" "Logical block size is: 2048" || return 1
        # the volume size isoinfo reads equals the file size
        assert_eq "$(($(stat -c %s "$iso") / 2048))" "$(sed -n 's/^Volume size is: //p' <<<"$d")" || return 1
        assert_eq "meta-data network-config user-data vendor-data " "$(iso_names -J "$iso")" "Joliet names" || return 1
        assert_eq "meta-data network-config user-data vendor-data " "$(iso_names -R "$iso")" "Rock Ridge names" || return 1
        local f
        for f in user-data:ud meta-data:md network-config:nc vendor-data:vd; do
                isoinfo -J -x "/${f%%:*}" -i "$iso" >"$T_TMP/j" || return 1
                assert_file_eq "$T_TMP/${f#*:}" "$T_TMP/j" || return 1
                isoinfo -R -x "/${f%%:*}" -i "$iso" >"$T_TMP/r" || return 1
                assert_file_eq "$T_TMP/${f#*:}" "$T_TMP/r" || return 1
        done
        # plain ISO 9660 readers see 8.3 names
        assert_contains "$(isoinfo -l -i "$iso")" "USER_DAT.;1" || return 1
        # isovfy checks the directory structure
        assert_exit 0 isovfy "$iso" || return 1
        assert_contains "$(cat "$T_OUT")" "No errors found" || return 1
        # blkid finds it the way cloud-init does: by label
        assert_eq "cidata iso9660" "$(blkid -o value -s LABEL "$iso") $(blkid -o value -s TYPE "$iso")" || return 1
}
run_test seed-from-files t_seed_from_files

t_xorriso_reads_back() {
        mk_inputs
        local iso=$T_TMP/seed.iso
        assert_exit 0 "$KILN" cidata -o "$iso" --user-data "$T_TMP/ud" --meta-data "$T_TMP/md" \
                --network-config "$T_TMP/nc" || return 1
        assert_exit 0 xorriso -indev "$iso" -ls / || return 1
        local out
        out=$(cat "$T_OUT" "$T_ERR")
        assert_contains "$out" "Volume id    : 'cidata'" || return 1
        assert_contains "$out" "'user-data'" || return 1
        assert_contains "$out" "'network-config'" || return 1
        assert_not_contains "$out" "FAILURE" || return 1
        assert_not_contains "$out" "0 data blocks" || return 1
        assert_exit 0 xorriso -indev "$iso" -osirrox on -extract / "$T_TMP/x" || return 1
        assert_file_eq "$T_TMP/ud" "$T_TMP/x/user-data" || return 1
        assert_file_eq "$T_TMP/md" "$T_TMP/x/meta-data" || return 1
        assert_file_eq "$T_TMP/nc" "$T_TMP/x/network-config" || return 1
        assert_eq "meta-data network-config user-data" "$(cd "$T_TMP/x" && echo *)" || return 1
        # Rock Ridge modes survive
        assert_eq "644" "$(stat -c %a "$T_TMP/x/user-data")" || return 1
}
run_test xorriso-reads-back t_xorriso_reads_back

t_subdirectory_files() {
        mk_inputs
        mkdir -p "$T_TMP/s"
        printf '#!/bin/sh\necho setup\n' >"$T_TMP/s/setup.sh"
        chmod 755 "$T_TMP/s/setup.sh"
        head -c 70000 /dev/urandom >"$T_TMP/s/blob"
        local iso=$T_TMP/seed.iso
        assert_exit 0 "$KILN" cidata -o "$iso" --user-data "$T_TMP/ud" \
                --file scripts/setup.sh="$T_TMP/s/setup.sh" \
                --file scripts/lib/a-long-data-file-name.bin="$T_TMP/s/blob" || return 1
        assert_eq "a-long-data-file-name.bin lib meta-data scripts setup.sh user-data " "$(iso_names -J "$iso")" || return 1
        isoinfo -J -x /scripts/lib/a-long-data-file-name.bin -i "$iso" >"$T_TMP/j" || return 1
        assert_file_eq "$T_TMP/s/blob" "$T_TMP/j" || return 1
        assert_exit 0 xorriso -indev "$iso" -osirrox on -extract / "$T_TMP/x" || return 1
        assert_file_eq "$T_TMP/s/setup.sh" "$T_TMP/x/scripts/setup.sh" || return 1
        assert_file_eq "$T_TMP/s/blob" "$T_TMP/x/scripts/lib/a-long-data-file-name.bin" || return 1
        assert_eq "755" "$(stat -c %a "$T_TMP/x/scripts/setup.sh")" || return 1
        assert_exit 0 isovfy "$iso" || return 1
        assert_contains "$(cat "$T_OUT")" "No errors found" || return 1
}
run_test subdirectory-files t_subdirectory_files

t_generated_documents() {
        ssh-keygen -q -t ed25519 -N '' -C 'e2e@kiln' -f "$T_TMP/key" || return 1
        local iso=$T_TMP/seed.iso
        assert_exit 0 "$KILN" cidata -o "$iso" --hostname node-7 --user ops --ssh-key "$T_TMP/key.pub" || return 1
        isoinfo -J -x /user-data -i "$iso" >"$T_TMP/ud" || return 1
        isoinfo -J -x /meta-data -i "$iso" >"$T_TMP/md" || return 1
        assert_eq "#cloud-config" "$(head -1 "$T_TMP/ud")" || return 1
        # YAML that says what was asked for
        assert_eq "ops True $(cut -d' ' -f1-3 "$T_TMP/key.pub")" "$(python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
u = d["users"][0]
print(u["name"], u["lock_passwd"], u["ssh_authorized_keys"][0])' "$T_TMP/ud")" || return 1
        assert_eq "node-7 iid-" "$(python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(d["local-hostname"], d["instance-id"][:4])' "$T_TMP/md")" || return 1
        # the instance id follows the contents: another host name, another id
        local id1 id2
        id1=$(sed -n 's/^instance-id: //p' "$T_TMP/md")
        assert_exit 0 "$KILN" cidata -o "$T_TMP/b.iso" --hostname node-8 --user ops --ssh-key "$T_TMP/key.pub" || return 1
        id2=$(isoinfo -J -x /meta-data -i "$T_TMP/b.iso" | sed -n 's/^instance-id: //p')
        [ -n "$id1" ] && [ "$id1" != "$id2" ] || t_fail "instance ids: '$id1' '$id2'" || return 1
        # keys without --user go to the default user; --instance-id is used as given
        assert_exit 0 "$KILN" cidata -o "$T_TMP/c.iso" --instance-id my-id --ssh-key "$T_TMP/key.pub" || return 1
        assert_eq "1 my-id" "$(isoinfo -J -x /user-data -i "$T_TMP/c.iso" | python3 -c '
import sys, yaml; print(len(yaml.safe_load(sys.stdin)["ssh_authorized_keys"]))') $(isoinfo -J -x /meta-data -i "$T_TMP/c.iso" | sed -n 's/^instance-id: //p')" || return 1
}
run_test generated-documents t_generated_documents

t_reproducible() {
        mk_inputs
        SOURCE_DATE_EPOCH=1700000000 "$KILN" cidata -o "$T_TMP/a.iso" --user-data "$T_TMP/ud" --meta-data "$T_TMP/md" >/dev/null || return 1
        touch -d '2001-01-01' "$T_TMP/ud" "$T_TMP/md"
        mkdir "$T_TMP/elsewhere"
        (cd "$T_TMP/elsewhere" && SOURCE_DATE_EPOCH=1700000000 "$KILN" cidata --user-data ../ud --meta-data ../md >/dev/null) || return 1
        cmp "$T_TMP/a.iso" "$T_TMP/elsewhere/seed.iso" || t_fail "same inputs, different ISOs" || return 1
        assert_contains "$(isoinfo -R -l -i "$T_TMP/a.iso")" "Nov 14 2023" || return 1
        # other contents, other bytes
        echo "# more" >>"$T_TMP/ud"
        SOURCE_DATE_EPOCH=1700000000 "$KILN" cidata -o "$T_TMP/b.iso" --user-data "$T_TMP/ud" --meta-data "$T_TMP/md" >/dev/null || return 1
        ! cmp -s "$T_TMP/a.iso" "$T_TMP/b.iso" || t_fail "different inputs, same ISO" || return 1
}
run_test reproducible t_reproducible

t_errors() {
        mk_inputs
        local iso=$T_TMP/seed.iso
        # a missing input: exit 2, the message names it, nothing written
        assert_exit 2 "$KILN" cidata -o "$iso" --user-data "$T_TMP/nope" || return 1
        assert_contains "$(cat "$T_ERR")" "cannot read --user-data $T_TMP/nope: No such file or directory" || return 1
        [ ! -e "$iso" ] || t_fail "$iso written" || return 1
        assert_exit 2 "$KILN" cidata -o "$iso" --meta-data "$T_TMP" || return 1
        assert_contains "$(cat "$T_ERR")" "--meta-data $T_TMP: Is a directory" || return 1
        assert_exit 2 "$KILN" cidata -o "$iso" --file x="$T_TMP/nope" || return 1
        assert_contains "$(cat "$T_ERR")" "No such file or directory" || return 1
        # a private key where a public one belongs
        ssh-keygen -q -t ed25519 -N '' -f "$T_TMP/key" || return 1
        assert_exit 2 "$KILN" cidata -o "$iso" --ssh-key "$T_TMP/key" || return 1
        assert_contains "$(cat "$T_ERR")" "not an OpenSSH public key" || return 1
        assert_exit 2 "$KILN" cidata -o "$iso" --hostname 'bad_name' || return 1
        assert_contains "$(cat "$T_ERR")" "not a valid host name" || return 1
        assert_exit 2 "$KILN" cidata -o "$iso" --user-data "$T_TMP/ud" --ssh-key "$T_TMP/key.pub" || return 1
        assert_contains "$(cat "$T_ERR")" "cannot be combined" || return 1
        assert_exit 2 "$KILN" cidata -o "$iso" --file 'a;1'="$T_TMP/ud" || return 1
        assert_contains "$(cat "$T_ERR")" "not a valid path on the ISO" || return 1
        assert_exit 2 "$KILN" cidata -o "$iso" --file user-data="$T_TMP/ud" || return 1
        assert_exit 2 "$KILN" cidata -o "$iso" --file "$(printf 'n%.0s' {1..65})"="$T_TMP/ud" || return 1
        assert_contains "$(cat "$T_ERR")" "over the ISO limits" || return 1
        printf 'a\0b' >"$T_TMP/bin"
        assert_exit 2 "$KILN" cidata -o "$iso" --user-data "$T_TMP/bin" || return 1
        assert_contains "$(cat "$T_ERR")" "NUL bytes" || return 1
        [ ! -e "$iso" ] || t_fail "$iso written" || return 1
        assert_exit 2 "$KILN" cidata --bogus || return 1
        # an unwritable destination: exit 1
        assert_exit 1 "$KILN" cidata -o "$T_TMP/no/such/dir/seed.iso" || return 1
        assert_contains "$(cat "$T_ERR")" "cannot write $T_TMP/no/such/dir/seed.iso" || return 1
        # a write that fails after it started (the writer refuses the path
        # once the temporary file exists) keeps the old file, leaves no
        # temporary file
        echo old >"$iso"
        assert_exit 2 "$KILN" cidata -o "$iso" --file 'a:b'="$T_TMP/ud" || return 1
        assert_eq "old seed.iso" "$(cat "$iso") $(cd "$T_TMP" && ls | grep seed)" || return 1
}
run_test errors t_errors

t_help() {
        assert_exit 0 "$KILN" cidata --help || return 1
        local h
        h=$(cat "$T_OUT")
        for o in --output --user-data --meta-data --network-config --vendor-data --hostname --instance-id --user --ssh-key --file SOURCE_DATE_EPOCH; do
                assert_contains "$h" "$o" || return 1
        done
        assert_contains "$("$KILN" --help)" "cidata" || return 1
}
run_test help t_help

e2e_summary
