#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The local image store end to end: kiln images add/list/show/rm/prune on a
# real build of examples/minimal and on small output folders made here, and
# kiln serve-images on a free 127.0.0.1 port, fetched with curl.
. "$(dirname "$0")/lib.sh"

# Debian's python3 (installed by scripts/install-deps.sh): a version-manager
# shim earlier in PATH costs half a second per call.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# fake_output DIR NAME SEED [MiB] — an output folder as kiln writes it:
# NAME.raw (sparse) and NAME.qcow2 with a kiln-manifest.json (schema 1).
fake_output() {
        local dir=$1 name=$2 seed=$3 mib=${4:-3} raw qc
        mkdir -p "$dir"
        raw=$dir/$name.raw qc=$dir/$name.qcow2
        # deterministic bytes from the seed, a hole in the middle
        "$PY" - "$raw" "$qc" "$seed" "$mib" <<'EOF'
import hashlib, sys
raw, qc, seed, mib = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
def stream(tag, n):
    out, i = bytearray(), 0
    while len(out) < n:
        out += hashlib.sha256(seed + tag + str(i).encode()).digest() * 64
        i += 1
    return bytes(out[:n])
with open(raw, "wb") as f:
    f.write(stream(b"r", 1 << 20))
    f.seek((mib - 1) << 20)
    f.write(stream(b"t", 1 << 20))
with open(qc, "wb") as f:
    f.write(stream(b"q", 300000))
EOF
        local s1 s2 z1 z2
        s1=$(sha "$raw") s2=$(sha "$qc")
        z1=$(stat -c %s "$raw") z2=$(stat -c %s "$qc")
        cat >"$dir/kiln-manifest.json" <<EOF
{
  "schema_version": 1,
  "name": "$name",
  "id": "$name",
  "arch": "x86_64",
  "role": null,
  "labels": {"os": "debian", "seed": "$seed"},
  "artifacts": [
    {"file": "$name.raw", "format": "raw", "size": $z1, "sha256": "$s1", "sha512": null},
    {"file": "$name.qcow2", "format": "qcow2", "size": $z2, "sha256": "$s2", "sha512": null}
  ]
}
EOF
}

# json_get FILE EXPR — evaluates a Python expression on the JSON document j.
json_get() {
        "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# sha FILE — its SHA-256 (OpenSSL: several times faster than sha256sum here).
sha() {
        openssl dgst -sha256 -r "$1" | cut -d' ' -f1
}

# wait_for DEADLINE_S CMD... — polls CMD until it succeeds or time runs out.
wait_for() {
        local end=$((SECONDS + $1))
        shift
        until "$@"; do
                [ "$SECONDS" -lt "$end" ] || return 1
                sleep 0.05
        done
}

t_real_build() {
        e2e_minimal_build || return 1
        local out=$E2E_MIN_OUT/minimal st=$T_TMP/store
        assert_exit 0 "$KILN" images add --store "$st" --label channel=ci "$out" || return 1
        assert_contains "$(<"$T_OUT")" "stored " || return 1
        assert_exit 0 "$KILN" images list --store "$st" --json || return 1
        cp "$T_OUT" "$T_TMP/list.json"
        assert_eq 2 "$(json_get "$T_TMP/list.json" 'len(j["images"])')" "two files" || return 1
        assert_eq "minimal minimal" "$(json_get "$T_TMP/list.json" '" ".join(e["name"] for e in j["images"])')" || return 1
        assert_eq "ci" "$(json_get "$T_TMP/list.json" 'j["images"][0]["labels"]["channel"]')" || return 1
        assert_eq "debian" "$(json_get "$T_TMP/list.json" 'j["images"][0]["labels"]["os"]')" || return 1
        # The catalogued checksums are the files' (SHA256SUMS written by the build)
        local f sum
        for f in minimal.raw minimal.qcow2; do
                sum=$(awk -v f="$f" '$2 == f || $2 == "*"f { print $1 }' "$out/SHA256SUMS")
                [ -n "$sum" ] || return 1
                assert_eq "$sum" "$(json_get "$T_TMP/list.json" "[e['sha256'] for e in j['images'] if e['file'] == '$f'][0]")" "$f" || return 1
                # a hard link (same inode) or an identical copy
                [ "$out/$f" -ef "$st/blobs/sha256/${sum:0:2}/$sum" ] ||
                        cmp -s "$out/$f" "$st/blobs/sha256/${sum:0:2}/$sum" ||
                        t_fail "blob of $f differs" || return 1
        done
        # Adding the same build again changes nothing.
        assert_exit 0 "$KILN" images add --store "$st" --label channel=ci "$out" || return 1
        assert_contains "$(<"$T_OUT")" "present" || return 1
        assert_not_contains "$(<"$T_OUT")" "stored " || return 1
        assert_exit 0 "$KILN" images list --store "$st" --json || return 1
        assert_eq 2 "$(json_get "$T_OUT" 'len(j["images"])')" || return 1
        assert_eq 2 "$(find "$st/blobs" -type f | wc -l)" || return 1
        # Promotion: the same build with another label only relabels it.
        assert_exit 0 "$KILN" images add --store "$st" --label channel=release "$out" || return 1
        assert_exit 0 "$KILN" images list --store "$st" --label channel=release --json || return 1
        assert_eq 2 "$(json_get "$T_OUT" 'len(j["images"])')" || return 1
        assert_exit 0 "$KILN" images list --store "$st" --label channel=ci --json || return 1
        assert_eq 0 "$(json_get "$T_OUT" 'len(j["images"])')" || return 1
        # The real qcow2 over HTTP, byte for byte.
        serve_start "$st" || return 1
        local ver
        ver=$(json_get "$T_TMP/list.json" 'j["images"][0]["version"]')
        curl -fsS -o "$T_TMP/dl.qcow2" "$URL/images/minimal/$ver/minimal.qcow2" || return 1
        assert_eq "$(awk '$2 ~ /minimal.qcow2$/ { print $1 }' "$out/SHA256SUMS")" \
                "$(sha "$T_TMP/dl.qcow2")" "downloaded qcow2" || return 1
        serve_stop || return 1
}

# serve_start STORE [OPTION...] — starts kiln serve-images on a free port;
# sets URL, SRV.
serve_start() {
        local st=$1
        shift
        "$KILN" serve-images --store "$st" --listen 127.0.0.1:0 "$@" >"$T_TMP/srv.out" 2>"$T_TMP/srv.err" &
        SRV=$!
        wait_for 20 grep -q 'http://127.0.0.1:[0-9]' "$T_TMP/srv.out" ||
                { cat "$T_TMP/srv.err"; t_fail "serve-images printed no URL"; return 1; }
        URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$T_TMP/srv.out")
        wait_for 20 curl -fsS -o /dev/null "$URL/images" || t_fail "server does not answer" || return 1
}

# serve_stop — SIGTERM, then waits for a clean exit (status 0, "stopped").
serve_stop() {
        kill -TERM "$SRV"
        local rc=0
        wait "$SRV" || rc=$?
        assert_eq 0 "$rc" "serve-images exit status" || return 1
        assert_contains "$(<"$T_TMP/srv.err")" "stopped" || return 1
}

t_serve() {
        local st=$T_TMP/store out=$T_TMP/out/demo
        fake_output "$out" demo s1 5
        assert_exit 0 "$KILN" images add --store "$st" --version 1.0 "$out" || return 1
        serve_start "$st" || return 1
        local sha size
        sha=$(sha "$out/demo.raw") size=$(stat -c %s "$out/demo.raw")
        # The listing is the catalog.
        curl -fsS -o "$T_TMP/images.json" "$URL/images" || return 1
        assert_eq "1.0 1.0" "$(json_get "$T_TMP/images.json" '" ".join(e["version"] for e in j["images"])')" || return 1
        # Whole file by name, by "latest", by digest: identical bytes.
        curl -fsS -D "$T_TMP/h1" -o "$T_TMP/a" "$URL/images/demo/1.0/demo.raw" || return 1
        curl -fsS -o "$T_TMP/b" "$URL/images/demo/latest/demo.raw" || return 1
        curl -fsS -o "$T_TMP/c" "$URL/blobs/sha256/$sha" || return 1
        for f in a b c; do
                assert_eq "$sha" "$(sha "$T_TMP/$f")" "download $f" || return 1
        done
        local h
        h=$(tr -d '\r' <"$T_TMP/h1")
        assert_contains "$h" "ETag: \"$sha\"" || return 1
        assert_contains "$h" "Content-Length: $size" || return 1
        assert_contains "$h" "X-Checksum-Sha256: $sha" || return 1
        local b64
        b64=$(printf '%s' "$sha" | xxd -r -p | base64)
        assert_contains "$h" "Digest: sha-256=$b64" || return 1
        # Range: the right slice, 206, Content-Range.
        curl -sS -D "$T_TMP/h2" -o "$T_TMP/slice" -r 1048000-1048999 "$URL/images/demo/1.0/demo.raw" || return 1
        assert_contains "$(tr -d '\r' <"$T_TMP/h2")" "HTTP/1.1 206" || return 1
        assert_contains "$(tr -d '\r' <"$T_TMP/h2")" "Content-Range: bytes 1048000-1048999/$size" || return 1
        tail -c +1048001 "$out/demo.raw" | head -c 1000 >"$T_TMP/want"
        assert_file_eq "$T_TMP/want" "$T_TMP/slice" || return 1
        # Suffix range: the last 10 bytes.
        curl -sS -o "$T_TMP/tail" -r -10 "$URL/blobs/sha256/$sha" || return 1
        tail -c 10 "$out/demo.raw" >"$T_TMP/want"
        assert_file_eq "$T_TMP/want" "$T_TMP/tail" || return 1
        # Unsatisfiable: 416 with Content-Range: bytes */SIZE.
        curl -s -D "$T_TMP/h4" -o /dev/null -r "$size-" "$URL/images/demo/1.0/demo.raw"
        assert_contains "$(tr -d '\r' <"$T_TMP/h4")" "HTTP/1.1 416" || return 1
        assert_contains "$(tr -d '\r' <"$T_TMP/h4")" "Content-Range: bytes */$size" || return 1
        # RFC 9110 §14.2: another unit, or an invalid range (9-3), is ignored:
        # the whole file, 200 (was 416). Several ranges: the whole file too.
        local rg
        for rg in 'items=0-5' 'bytes=9-3' 'bytes=abc' 'bytes=0-1,5-6'; do
                assert_eq "200 $size" "$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "Range: $rg" "$URL/images/demo/1.0/demo.raw")" "Range: $rg" || return 1
        done
        # The unit is case-insensitive.
        assert_eq "206 6" "$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H 'Range: BYTES=0-5' "$URL/images/demo/1.0/demo.raw")" || return 1
        # ETag / If-None-Match: 304 without a body; another tag: 200.
        assert_eq 304 "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: \"$sha\"" "$URL/images/demo/1.0/demo.raw")" || return 1
        assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' "$URL/images/demo/1.0/demo.raw")" || return 1
        # HEAD: headers only.
        curl -fsS -I -o "$T_TMP/h3" "$URL/images/demo/1.0/demo.qcow2" || return 1
        assert_contains "$(tr -d '\r' <"$T_TMP/h3")" "Content-Length: $(stat -c %s "$out/demo.qcow2")" || return 1
        # Nothing outside the catalog: escapes are 400, unknown names 404.
        local p code
        for p in "/images/../catalog.db" "/images/demo/1.0/../../../catalog.db" \
                "/images/demo/%2e%2e/%2e%2e" "/images/demo/1.0/..%2f..%2fcatalog.db" \
                "/blobs/sha256/../../catalog.db" "/blobs/sha256/%2e%2e%2fcatalog.db" \
                "/blobs/sha256/${sha^^}" "/images/demo/1.0/demo.raw/x"; do
                code=$(curl -s --path-as-is -o "$T_TMP/body" -w '%{http_code}' "$URL$p")
                case "$code" in 400 | 404) ;; *) t_fail "$p: HTTP $code"; return 1 ;; esac
                assert_not_contains "$(<"$T_TMP/body")" "SQLite" || return 1
        done
        assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/images/demo/2.0/demo.raw")" || return 1
        assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/images/demo/1.0/nothere.raw")" || return 1
        assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/blobs/sha256/$(printf '%064d' 0)")" || return 1
        assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/catalog.db")" || return 1
        assert_eq 405 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/images/demo/1.0/demo.raw")" || return 1
        serve_stop || return 1
        assert_contains "$(<"$T_TMP/srv.err")" "127.0.0.1 GET /images/demo/1.0/demo.raw 206 1000" || return 1
}

# send_raw PORT BYTES — one raw HTTP request (backslash escapes as in %b, in
# BYTES); prints the status code.
send_raw() {
        printf '%b' "$2" | "$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.stdin.buffer.read())
print(s.recv(64).split(b" ")[1].decode())' "$1"
}

t_serve_paths_and_log() {
        local st=$T_TMP/store out=$T_TMP/out/demo
        fake_output "$out" demo s1 2
        assert_exit 0 "$KILN" images add --store "$st" --version 1.0 "$out" || return 1
        serve_start "$st" || return 1
        local port=${URL##*:} p
        # A decoded NUL, control character, DEL or non-ASCII byte, or a bad
        # escape: 400 (%00 was answered 200 for demo.raw).
        for p in "/images/demo/1.0/demo.raw%00.txt" "/images/demo/1.0/demo.raw%00" \
                "/blobs/sha256/$(sha "$out/demo.raw")%00" "/images/demo/1.0/x%0aFORGED%20200" \
                "/images/demo/1.0/x%0d%0aFORGED" "/images/demo/1.0/x%1b%5b31m" "/images/demo/1.0/x%7f" \
                "/images/demo/1.0/x%c3%a9" "/images/demo/1.0/demo.raw%" "/images/demo/1.0/demo.raw%2"; do
                assert_eq 400 "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$URL$p")" "$p" || return 1
        done
        # Escaped plain characters are fine; a query is ignored.
        assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/images/%64emo/1.0/demo.raw?a=%00")" || return 1
        # Raw bytes in the request line: a NUL that would cut the path, an
        # ESC that would colour the terminal, a CR.
        assert_eq 400 "$(send_raw "$port" 'GET /images/demo/1.0/demo.raw\000junk HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')" "raw NUL" || return 1
        assert_eq 400 "$(send_raw "$port" 'GET /images/\033[2J\033[31mFORGED HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')" "raw ESC" || return 1
        serve_stop || return 1
        local log
        log=$(<"$T_TMP/srv.err")
        # Logged as sent, escaped: no forged line, no control byte.
        assert_contains "$log" "GET /images/demo/1.0/demo.raw%00.txt 400" || return 1
        assert_contains "$log" "GET /images/demo/1.0/x%0aFORGED%20200 400" || return 1
        assert_contains "$log" 'GET /images/\x1b[2J\x1b[31mFORGED 400' || return 1
        assert_eq 0 "$(grep -c '^FORGED' "$T_TMP/srv.err")" "forged log lines" || return 1
        assert_eq 0 "$(tr -d '\n' <"$T_TMP/srv.err" | LC_ALL=C tr -d '[:print:]' | wc -c)" "control bytes in the log" || return 1
}

# hold_idle PORT N SECONDS SRC WANT DIR — opens N idle connections from
# address SRC to the server and holds them at most SECONDS; touches DIR/ready
# once all are connected, writes DIR/closed (how many the server closed) as
# soon as WANT of them are closed (polled every 50 ms) or at the deadline.
hold_idle() {
        "$PY" - "$@" <<'EOF'
import os, select, socket, sys, time
port, n, hold, src, want, d = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
socks = []
for _ in range(n):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    socks.append(s)
open(os.path.join(d, "ready"), "w").close()
live, reported = set(socks), False
end = time.monotonic() + hold
while time.monotonic() < end:
    if not reported and n - len(live) >= want:
        with open(os.path.join(d, "closed.tmp"), "w") as f:
            f.write(str(n - len(live)))
        os.rename(os.path.join(d, "closed.tmp"), os.path.join(d, "closed"))
        reported = True
    if reported and not live:
        break
    r = select.select(list(live), [], [], 0.05)[0] if live else []
    if not live:
        time.sleep(0.05)
    for s in r:
        try:
            gone = s.recv(1) == b""
        except OSError:
            gone = True
        if gone:
            live.discard(s)
if not reported:
    with open(os.path.join(d, "closed"), "w") as f:
        f.write(str(n - len(live)))
EOF
}

t_serve_limits() {
        local st=$T_TMP/store out=$T_TMP/out/demo
        fake_output "$out" demo s1 2
        assert_exit 0 "$KILN" images add --store "$st" --version 1.0 "$out" || return 1
        # Defaults: 300 idle connections from 127.0.0.1 (which locked every
        # client out: 256 slots for all, 120 s timeout) leave room for
        # another client, and those above the per-client limit are closed
        # at once.
        serve_start "$st" || return 1
        local port=${URL##*:} holder rc=0
        mkdir "$T_TMP/a" "$T_TMP/b"
        hold_idle "$port" 300 40 127.0.0.1 $((300 - 16)) "$T_TMP/a" &
        holder=$!
        wait_for 30 test -e "$T_TMP/a/ready" || t_fail "could not open 300 connections" || rc=1
        [ $rc = 0 ] && { assert_eq 200 "$(curl -s -m 5 --interface 127.0.0.2 -o /dev/null -w '%{http_code}' "$URL/images")" \
                "another client while 300 idle connections are held" || rc=1; }
        [ $rc = 0 ] && { wait_for 15 test -e "$T_TMP/a/closed" || t_fail "excess connections were not closed" || rc=1; }
        [ $rc = 0 ] && { [ "$(<"$T_TMP/a/closed")" -ge 284 ] || t_fail "closed: $(<"$T_TMP/a/closed") of 300" || rc=1; }
        kill "$holder" 2>/dev/null
        wait "$holder" 2>/dev/null
        [ $rc = 0 ] || { kill "$SRV"; return 1; }
        serve_stop || return 1
        # An idle connection is closed after --idle-timeout (not before).
        serve_start "$st" --max-per-client 4 --idle-timeout 2 || return 1
        port=${URL##*:}
        local t0=$SECONDS
        hold_idle "$port" 4 20 127.0.0.1 4 "$T_TMP/b" || return 1
        assert_eq 4 "$(<"$T_TMP/b/closed")" "idle connections closed by the server within 20 s" || return 1
        [ $((SECONDS - t0)) -ge 1 ] || t_fail "closed before the idle timeout" || return 1
        assert_eq 200 "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$URL/images")" || return 1
        serve_stop || return 1
        assert_exit 2 "$KILN" serve-images --store "$st" --max-per-client 0 || return 1
        assert_exit 2 "$KILN" serve-images --store "$st" --idle-timeout 1x || return 1
        assert_exit 2 "$KILN" serve-images --store "$st" --max-connections 8 --max-per-client 9 || return 1
}

t_prune() {
        local st=$T_TMP/store i
        for i in 1 2 3; do
                fake_output "$T_TMP/out$i/app" app "v$i" 2
                assert_exit 0 "$KILN" images add --store "$st" "$T_TMP/out$i/app" || return 1
        done
        fake_output "$T_TMP/outb/base" base b1 2
        assert_exit 0 "$KILN" images add --store "$st" "$T_TMP/outb/base" || return 1
        assert_exit 0 "$KILN" images list --store "$st" --json || return 1
        assert_eq 8 "$(json_get "$T_OUT" 'len(j["images"])')" || return 1
        local newest
        newest=$(json_get "$T_OUT" '[e["version"] for e in j["images"] if e["name"] == "app"][0]')
        assert_exit 0 "$KILN" images prune --store "$st" --keep 1 --dry-run || return 1
        assert_contains "$(<"$T_OUT")" "dry run: 4 entries" || return 1
        assert_exit 0 "$KILN" images list --store "$st" --json || return 1
        assert_eq 8 "$(json_get "$T_OUT" 'len(j["images"])')" "dry run changed nothing" || return 1
        assert_exit 0 "$KILN" images prune --store "$st" --keep 1 --json || return 1
        assert_eq 4 "$(json_get "$T_OUT" 'len(j["removed"])')" || return 1
        assert_exit 0 "$KILN" images list --store "$st" --json || return 1
        assert_eq "$newest $newest" "$(json_get "$T_OUT" '" ".join(e["version"] for e in j["images"] if e["name"] == "app")')" || return 1
        assert_eq 2 "$(json_get "$T_OUT" 'len([e for e in j["images"] if e["name"] == "base"])')" || return 1
        assert_eq 4 "$(find "$st/blobs" -type f | wc -l)" "blobs left" || return 1
}

t_rm_show_filters() {
        local st=$T_TMP/store
        fake_output "$T_TMP/o1/k8s" k8s a 2
        fake_output "$T_TMP/o2/k8s" k8s b 2
        assert_exit 0 "$KILN" images add --store "$st" --label channel=release --label kubernetes_version=1.30.2 "$T_TMP/o1/k8s" || return 1
        assert_exit 0 "$KILN" images add --store "$st" --label channel=ci --copy "$T_TMP/o2/k8s" || return 1
        assert_exit 0 "$KILN" images list --store "$st" --label channel=release --format qcow2 --json || return 1
        assert_eq 1 "$(json_get "$T_OUT" 'len(j["images"])')" || return 1
        assert_eq "1.30.2" "$(json_get "$T_OUT" 'j["images"][0]["labels"]["kubernetes_version"]')" || return 1
        local id ver
        id=$(json_get "$T_OUT" 'j["images"][0]["id"]') ver=$(json_get "$T_OUT" 'j["images"][0]["version"]')
        assert_exit 0 "$KILN" images show --store "$st" "$id" || return 1
        assert_contains "$(<"$T_OUT")" "image:    k8s:$ver" || return 1
        assert_exit 0 "$KILN" images show --store "$st" --json k8s || return 1
        assert_eq 2 "$(json_get "$T_OUT" 'len(j["entries"])')" "newest version: two files" || return 1
        assert_eq ci "$(json_get "$T_OUT" 'j["entries"][0]["labels"]["channel"]')" || return 1
        # A human table with a header.
        assert_exit 0 "$KILN" images list --store "$st" --arch x86_64 || return 1
        assert_contains "$(head -1 "$T_OUT")" "NAME" || return 1
        assert_eq 5 "$(wc -l <"$T_OUT")" || return 1
        # rm a whole version; its blobs go (the other version has other content).
        assert_exit 0 "$KILN" images rm --store "$st" "k8s:$ver" || return 1
        assert_contains "$(<"$T_OUT")" "removed 2 entries; 2 blobs freed" || return 1
        assert_eq 2 "$(find "$st/blobs" -type f | wc -l)" || return 1
        # Bare files need a name; the format comes from the extension.
        assert_exit 2 "$KILN" images add --store "$st" "$T_TMP/o1/k8s/k8s.qcow2" || return 1
        assert_contains "$(<"$T_ERR")" "--name" || return 1
        assert_exit 0 "$KILN" images add --store "$st" --name single --version 7 "$T_TMP/o1/k8s/k8s.qcow2" || return 1
        assert_exit 0 "$KILN" images list --store "$st" --name single --json || return 1
        assert_eq "qcow2 7" "$(json_get "$T_OUT" 'j["images"][0]["format"] + " " + j["images"][0]["version"]')" || return 1
}

t_errors() {
        local st=$T_TMP/store
        fake_output "$T_TMP/o/demo" demo e 2
        assert_exit 2 "$KILN" images --store "$st" || return 1
        assert_exit 2 "$KILN" images add --store "$st" || return 1
        assert_exit 2 "$KILN" images add --store "$st" "$T_TMP" || return 1
        assert_contains "$(<"$T_ERR")" "kiln-manifest.json" || return 1
        # A corrupted artifact is refused and nothing is catalogued.
        printf 'X' | dd of="$T_TMP/o/demo/demo.qcow2" bs=1 seek=100 conv=notrunc status=none
        assert_exit 1 "$KILN" images add --store "$st" "$T_TMP/o/demo" || return 1
        assert_contains "$(<"$T_ERR")" "sha256 is" || return 1
        assert_exit 0 "$KILN" images list --store "$st" --json || return 1
        assert_eq 0 "$(json_get "$T_OUT" 'len(j["images"])')" || return 1
        assert_eq 0 "$(find "$st/blobs" -type f | wc -l)" || return 1
        assert_exit 2 "$KILN" images show --store "$st" nothing || return 1
        assert_exit 2 "$KILN" images rm --store "$st" demo || return 1
        assert_exit 2 "$KILN" images rm --store "$st" 42 || return 1
        assert_exit 2 "$KILN" images prune --store "$st" || return 1
        assert_exit 2 "$KILN" images prune --store "$st" --keep -1 || return 1
        assert_exit 2 "$KILN" images list --store "$st" --keep 3 || return 1
        assert_exit 2 "$KILN" images add --store "$st" --label novalue "$T_TMP/o/demo" || return 1
        assert_exit 2 "$KILN" serve-images --store "$st" --listen nonsense:port || return 1
        assert_exit 0 "$KILN" images --help || return 1
        assert_contains "$(<"$T_OUT")" "prune --keep N" || return 1
        # The default store directory comes from KILN_STORE_DIR.
        assert_exit 0 env KILN_STORE_DIR="$T_TMP/envstore" "$KILN" images list || return 1
        [ -f "$T_TMP/envstore/catalog.db" ] || t_fail "KILN_STORE_DIR not used" || return 1
}

run_test store_real_build t_real_build
run_test store_serve t_serve
run_test store_serve_paths_and_log t_serve_paths_and_log
run_test store_serve_limits t_serve_limits
run_test store_prune t_prune
run_test store_rm_show_filters t_rm_show_filters
run_test store_errors t_errors

e2e_summary
