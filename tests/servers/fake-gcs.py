#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""fake-gcs.py - a FAKE Google Cloud Storage JSON API and OAuth2 token
endpoint on 127.0.0.1, for kiln's tests. Nothing real can run Google's
control plane on one machine, so this fake checks what the real one would:

  token endpoint   POST /token: grant_type jwt-bearer; the assertion's
                   header is {"alg":"RS256","typ":"JWT"}; its RS256 signature
                   verifies against --public-key (checked here with Python
                   integers, independently of the OpenSSL kiln signs with);
                   iss = --client-email, aud = the token URI, scope names
                   devstorage (or cloud-platform), iat near now,
                   0 < exp - iat <= 3600. Answers an access token.
  metadata server  GET /computeMetadata/v1/instance/service-accounts/default/token
                   with "Metadata-Flavor: Google" (kiln's auth: metadata).
  bearer tokens    every storage call needs "Authorization: Bearer <token>"
                   with a token issued here and not revoked, else 401.
  objects          GET/DELETE /storage/v1/b/B/o/NAME (alt=media: the data);
                   POST /upload/storage/v1/b/B/o?uploadType=media|resumable.
  resumable        a session URI (Location); PUTs with Content-Range
                   "bytes S-E/TOTAL" must start at the committed offset, carry
                   exactly E-S+1 bytes, be multiples of 256 KiB except the
                   last, and keep TOTAL = X-Upload-Content-Length; 308 with
                   "Range: bytes=0-N" (none when nothing is committed) until
                   the last, then 200 with the object resource; "bytes */TOTAL"
                   with no body asks for the state.

Objects live under --data-dir: DIR/BUCKET/<quoted name> (bytes) and
<quoted name>.json (the resource); tests read and overwrite them there.
Buckets are the --bucket names; others are 404 "bucket does not exist".

Faults, armed by POST /_fake/fault (no auth; form fields), each firing once:
  cut=N        the next resumable chunk is cut after N bytes of its body
               (what arrived is committed in whole 256 KiB units, as GCS may)
  status=CODE  the next resumable chunk is answered CODE (e.g. 503, 429)
  revoke=1     the next storage call's (valid) token is revoked: 401
GET /_fake/stats: JSON counters (tokens issued, faults fired, chunk bytes
received, status queries, refused calls) and the tokens issued, so a test
can look for them where they must not be.

    fake-gcs.py --port-file FILE --data-dir DIR --public-key PEM
                --client-email EMAIL [--bucket NAME]... [--token-lifetime S]

The port is written to FILE once listening (its presence means ready).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UNIT = 256 * 1024
lock = threading.Lock()
S = {
    "tokens": {},         # token -> expiry (time.time())
    "issued": [],         # every token issued
    "sessions": {},       # id -> dict
    "faults": {},         # armed
    "stats": {"tokens_issued": 0, "jwt_verified": 0, "jwt_refused": 0, "faults_fired": 0,
              "chunk_bytes": 0, "chunks": 0, "status_queries": 0, "unauthorized": 0,
              "revoked": 0, "uploads_done": 0, "sessions": 0, "metadata_tokens": 0},
}
ARGS = None


# ---- RSA PKCS#1 v1.5 / SHA-256 verification, with Python integers ----

def der_read(buf, pos):
    tag = buf[pos]
    ln = buf[pos + 1]
    pos += 2
    if ln & 0x80:
        k = ln & 0x7F
        ln = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, buf[pos:pos + ln], pos + ln


def rsa_public_key(pem):
    b64 = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    der = base64.b64decode(b64)
    tag, spki, _ = der_read(der, 0)                      # SubjectPublicKeyInfo
    assert tag == 0x30
    tag, _alg, pos = der_read(spki, 0)                   # AlgorithmIdentifier
    tag, bits, _ = der_read(spki, pos)                   # BIT STRING
    assert tag == 0x03 and bits[0] == 0
    tag, seq, _ = der_read(bits[1:], 0)                  # RSAPublicKey
    tag, n, pos = der_read(seq, 0)
    tag, e, _ = der_read(seq, pos)
    return int.from_bytes(n, "big"), int.from_bytes(e, "big")


SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_ok(key, data, sig):
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    t = SHA256_PREFIX + hashlib.sha256(data).digest()
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


def b64url_decode(s):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", s):
        raise ValueError("not base64url (or padded)")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---- storage on disk ----

def obj_paths(bucket, name):
    d = os.path.join(ARGS.data_dir, bucket)
    q = urllib.parse.quote(name, safe="")
    return os.path.join(d, q), os.path.join(d, q + ".json")


def store_object(bucket, name, data, content_type, metadata):
    data_p, meta_p = obj_paths(bucket, name)
    os.makedirs(os.path.dirname(data_p), exist_ok=True)
    with open(data_p + ".tmp", "wb") as f:
        f.write(data)
    os.replace(data_p + ".tmp", data_p)
    res = {
        "kind": "storage#object", "bucket": bucket, "name": name, "size": str(len(data)),
        "contentType": content_type,
        "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
        "generation": str(time.time_ns()),
    }
    if metadata:
        res["metadata"] = metadata
    with open(meta_p, "w") as f:
        json.dump(res, f)
    return res


def load_resource(bucket, name):
    data_p, meta_p = obj_paths(bucket, name)
    try:
        with open(meta_p) as f:
            res = json.load(f)
        res["size"] = str(os.path.getsize(data_p))  # the bytes decide, as on GCS
        return res
    except FileNotFoundError:
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-gcs: " + (fmt % args) + "\n")

    # -- answers --
    def answer(self, code, body=b"", headers=(), ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, message):
        self.answer(code, {"error": {"code": code, "message": message}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def stat(self, key, n=1):
        with lock:
            S["stats"][key] += n

    # -- auth --
    def bearer_ok(self):
        h = self.headers.get("Authorization", "")
        tok = h[len("Bearer "):] if h.startswith("Bearer ") else None
        with lock:
            exp = S["tokens"].get(tok) if tok else None
            if exp is not None and S["faults"].pop("revoke", None):
                del S["tokens"][tok]
                S["stats"]["faults_fired"] += 1
                S["stats"]["revoked"] += 1
                exp = None
        if exp is None or exp < time.time():
            self.stat("unauthorized")
            self.body()
            self.error(401, "Invalid Credentials")
            return False
        return True

    def issue(self, lifetime):
        tok = "ya29.fake-" + secrets.token_urlsafe(32)
        with lock:
            S["tokens"][tok] = time.time() + lifetime
            S["issued"].append(tok)
            S["stats"]["tokens_issued"] += 1
        return tok

    def token_endpoint(self):
        form = urllib.parse.parse_qs(self.body().decode(), keep_blank_values=True)
        token_uri = "http://127.0.0.1:%d/token" % self.server.server_port
        try:
            if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                raise ValueError("unsupported grant_type")
            parts = form["assertion"][0].split(".")
            if len(parts) != 3:
                raise ValueError("not a JWT")
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            if header != {"alg": "RS256", "typ": "JWT"}:
                raise ValueError("header %r" % header)
            if not rs256_ok(KEY, (parts[0] + "." + parts[1]).encode(), b64url_decode(parts[2])):
                raise ValueError("Invalid JWT Signature.")
            now = time.time()
            if claims.get("iss") != ARGS.client_email:
                raise ValueError("iss %r" % claims.get("iss"))
            if claims.get("aud") != token_uri:
                raise ValueError("aud %r is not %s" % (claims.get("aud"), token_uri))
            scope = claims.get("scope", "")
            if "devstorage" not in scope and "cloud-platform" not in scope:
                raise ValueError("scope %r" % scope)
            iat, exp = claims.get("iat"), claims.get("exp")
            if not isinstance(iat, int) or not isinstance(exp, int) or not 0 < exp - iat <= 3600:
                raise ValueError("iat/exp")
            if abs(iat - now) > 300 or exp < now:
                raise ValueError("Invalid JWT: Token must be a short-lived token")
        except (ValueError, KeyError, IndexError, AssertionError) as e:
            self.stat("jwt_refused")
            self.answer(400, {"error": "invalid_grant", "error_description": str(e)})
            return
        self.stat("jwt_verified")
        tok = self.issue(ARGS.token_lifetime)
        self.answer(200, {"access_token": tok, "expires_in": ARGS.token_lifetime,
                          "token_type": "Bearer"})

    # -- routing --
    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/token":
            return self.token_endpoint()
        if u.path == "/_fake/fault":
            form = urllib.parse.parse_qs(self.body().decode())
            with lock:
                for k, v in form.items():
                    S["faults"][k] = v[0]
            return self.answer(200, {"armed": sorted(S["faults"])})
        m = re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", u.path)
        if not m:
            self.body()
            return self.error(404, "Not Found")
        if not self.bearer_ok():
            return
        bucket = m.group(1)
        if bucket not in ARGS.bucket:
            self.body()
            return self.error(404, "The specified bucket does not exist.")
        name = q.get("name", [None])[0]
        kind = q.get("uploadType", [None])[0]
        if kind == "media":
            if not name:
                return self.error(400, "Required parameter: name")
            data = self.body()
            res = store_object(bucket, name, data, self.headers.get("Content-Type", ""), None)
            return self.answer(200, res)
        if kind != "resumable":
            self.body()
            return self.error(400, "uploadType must be media or resumable here")
        try:
            meta = json.loads(self.body() or b"{}")
        except ValueError:
            return self.error(400, "the body is not JSON")
        if meta.get("name") and name and meta["name"] != name:
            return self.error(400, "name in the query and the body differ")
        name = name or meta.get("name")
        total = self.headers.get("X-Upload-Content-Length")
        sid = secrets.token_hex(16)
        with lock:
            S["sessions"][sid] = {"bucket": bucket, "name": name, "data": bytearray(),
                                  "total": int(total) if total is not None else None,
                                  "meta": meta.get("metadata") or {},
                                  "ctype": meta.get("contentType") or "application/octet-stream",
                                  "done": None}
            S["stats"]["sessions"] += 1
        loc = "http://127.0.0.1:%d/upload/storage/v1/b/%s/o?uploadType=resumable&upload_id=%s" % (
            self.server.server_port, bucket, sid)
        self.answer(200, b"", [("Location", loc)])

    def session_put(self, sid):
        with lock:
            s = S["sessions"].get(sid)
        if not s:
            self.body()
            return self.error(404, "No such upload session")
        cr = self.headers.get("Content-Range", "")
        n = int(self.headers.get("Content-Length") or 0)
        m = re.fullmatch(r"bytes \*/(\d+)", cr)
        if m:  # a status query (no body)
            self.stat("status_queries")
            if n:
                self.body()
                return self.error(400, "a status query has no body")
            return self.session_state(s)
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", cr)
        if not m:
            self.body()
            return self.error(400, "Content-Range %r" % cr)
        start, end, total = (int(x) for x in m.groups())
        if s["total"] is not None and total != s["total"]:
            self.body()
            return self.error(400, "total %d is not X-Upload-Content-Length %d" % (total, s["total"]))
        s["total"] = total
        if start != len(s["data"]):
            self.body()
            return self.error(400, "Content-Range starts at %d, %d bytes are committed" % (start, len(s["data"])))
        if end < start or end >= total or n != end - start + 1:
            self.body()
            return self.error(400, "Content-Range %r does not match the %d bytes sent" % (cr, n))
        if (end + 1) != total and n % UNIT:
            self.body()
            return self.error(400, "a chunk that is not the last must be a multiple of 256 KiB (%d)" % n)
        with lock:
            status = S["faults"].pop("status", None)
            cut = S["faults"].pop("cut", None)
            if status or cut:
                S["stats"]["faults_fired"] += 1
        if status:
            self.body()
            return self.error(int(status), "fault: answered %s once" % status)
        if cut:
            got = self.rfile.read(min(int(cut), n))
            keep = len(got) // UNIT * UNIT
            s["data"] += got[:keep]
            self.stat("chunk_bytes", len(got))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        data = self.body()
        s["data"] += data
        self.stat("chunk_bytes", len(data))
        self.stat("chunks")
        self.session_state(s)

    def session_state(self, s):
        if s["total"] is not None and len(s["data"]) == s["total"]:
            if s["done"] is None:
                s["done"] = store_object(s["bucket"], s["name"], bytes(s["data"]), s["ctype"], s["meta"])
                self.stat("uploads_done")
            return self.answer(200, s["done"])
        hdrs = [("Range", "bytes=0-%d" % (len(s["data"]) - 1))] if s["data"] else []
        self.answer(308, b"", hdrs)

    def do_PUT(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        if not self.bearer_ok():
            return
        if "upload_id" in q:
            return self.session_put(q["upload_id"][0])
        self.body()
        self.error(404, "Not Found")

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/_fake/stats":
            with lock:
                return self.answer(200, dict(S["stats"], issued=list(S["issued"])))
        if u.path == "/computeMetadata/v1/instance/service-accounts/default/token":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.error(403, "Missing Metadata-Flavor: Google")
            self.stat("metadata_tokens")
            tok = self.issue(ARGS.token_lifetime)
            return self.answer(200, {"access_token": tok, "expires_in": ARGS.token_lifetime,
                                     "token_type": "Bearer"})
        route = self.object_route(u.path)
        if not route:
            return
        bucket, name = route
        res = load_resource(bucket, name)
        if res is None:
            return self.error(404, "No such object: %s/%s" % (bucket, name))
        if q.get("alt") == ["media"]:
            with open(obj_paths(bucket, name)[0], "rb") as f:
                return self.answer(200, f.read(), ctype=res.get("contentType", "application/octet-stream"))
        self.answer(200, res)

    def object_route(self, path):
        """(bucket, name) of /storage/v1/b/B/o/NAME with a valid token and a
        known bucket; else answers (404, 401) and returns None."""
        m = re.fullmatch(r"/storage/v1/b/([^/]+)/o/(.+)", path)
        if not m:
            self.error(404, "Not Found")
            return None
        if not self.bearer_ok():
            return None
        if m.group(1) not in ARGS.bucket:
            self.error(404, "The specified bucket does not exist.")
            return None
        return m.group(1), urllib.parse.unquote(m.group(2))

    def do_DELETE(self):
        route = self.object_route(urllib.parse.urlsplit(self.path).path)
        if not route:
            return
        bucket, name = route
        data_p, meta_p = obj_paths(bucket, name)
        if not os.path.exists(meta_p):
            return self.error(404, "No such object: %s/%s" % (bucket, name))
        os.unlink(data_p)
        os.unlink(meta_p)
        self.answer(204)


def main():
    global ARGS, KEY
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--public-key", required=True)
    p.add_argument("--client-email", required=True)
    p.add_argument("--bucket", action="append", default=[])
    p.add_argument("--token-lifetime", type=int, default=3600)
    ARGS = p.parse_args()
    with open(ARGS.public_key) as f:
        KEY = rsa_public_key(f.read())
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_port)
    os.replace(tmp, ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
