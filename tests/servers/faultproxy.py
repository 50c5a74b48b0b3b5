#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""faultproxy.py - a TCP proxy on 127.0.0.1 that injects one fault into the
request stream, for testing how kiln's publishers handle broken transfers.

    faultproxy.py --target HOST:PORT --port-file FILE [--cut-after N | --flip-at N]

Listens on a free port of 127.0.0.1 (written to FILE once listening: its
presence means ready) and forwards every connection to HOST:PORT. Bytes sent
by clients (the request stream, counted across all connections in arrival
order) are numbered from 0; the fault happens once, when that count reaches
N:

  --cut-after N   the connection carrying byte N is closed in both directions
                  before byte N is forwarded (the client sees a reset/EOF
                  mid-request)
  --flip-at N     byte N is forwarded with its bits inverted

After the fault, everything is forwarded untouched. FILE.fired is created
when the fault has happened, so a test can assert it did. Stop the proxy
with SIGTERM.
"""
import argparse
import os
import signal
import socket
import sys
import threading

lock = threading.Lock()
state = {"count": 0, "fired": False}


def fire(port_file):
    state["fired"] = True
    with open(port_file + ".fired", "w") as f:
        f.write("1\n")


def shutdown_both(*socks):
    """Ends both directions of each socket, ignoring ones already gone."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def pump_request(src, dst, args):
    """Client -> server, with the fault."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            cut = False
            with lock:
                start = state["count"]
                state["count"] += len(data)
                if not state["fired"]:
                    if args.cut_after is not None and start + len(data) > args.cut_after:
                        keep = max(0, args.cut_after - start)
                        data = data[:keep]
                        cut = True
                        fire(args.port_file)
                    elif args.flip_at is not None and start <= args.flip_at < start + len(data):
                        i = args.flip_at - start
                        data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                        fire(args.port_file)
            if data:
                dst.sendall(data)
            if cut:
                # RST rather than FIN on both sides: a broken network.
                for s in (src, dst):
                    try:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    except OSError:
                        pass
                    try:
                        s.close()
                    except OSError:
                        pass
                return
    except OSError:
        pass
    finally:
        shutdown_both(src, dst)


def pump_response(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        shutdown_both(src, dst)


def handle(client, target, args):
    try:
        server = socket.create_connection(target, timeout=30)
        server.settimeout(None)
    except OSError:
        client.close()
        return
    threading.Thread(target=pump_response, args=(server, client), daemon=True).start()
    pump_request(client, server, args)


def main():
    ap = argparse.ArgumentParser(description="TCP proxy that injects one fault")
    ap.add_argument("--target", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--port-file", required=True, help="where to write the listening port")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--cut-after", type=int, help="cut the connection at request byte N")
    g.add_argument("--flip-at", type=int, help="invert request byte N")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    target = (host, int(port))

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, args.port_file)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c, target, args), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
