#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tree-manifest.py ROOT — one line per path of a root tree: path, type,
mode, owner, and the SHA-256 of a file's content or a symlink's target.
Modification times are left out (two bootstraps never share them).

Paths whose content legitimately differs between two bootstraps of the same
packages are listed with their type, mode and owner but "variable" for the
content (each one is named, with the reason, in VARIABLE below); a path
that is only in one tree, or whose type, mode or owner differs, still
shows up. tests/e2e/test_bootstrap.sh compares two such manifests."""
import fnmatch
import hashlib
import os
import stat
import sys

# Content that differs from one bootstrap to the next whatever kiln does
# (found by comparing a tree of kiln before this bootstrap with one of
# after: these are the only paths whose content differed):
VARIABLE = [
    # the initramfs is a cpio archive with the build's timestamps; its file
    # list is compared separately (test_bootstrap.sh)
    "/boot/initrd.img-*",
    # SSH host keys are random (openssh-server's postinst makes them)
    "/etc/ssh/ssh_host_*",
    # dpkg's copy of its database from before its latest run: which run was
    # the latest depends on how the dpkg calls are sequenced (the deferred
    # initramfs adds one), not on what is installed; the database itself,
    # /var/lib/dpkg/status, is compared
    "/var/lib/dpkg/status-old",
]


def variable(path):
    return any(fnmatch.fnmatchcase(path, p) for p in VARIABLE)


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    root = sys.argv[1].rstrip("/")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = full[len(root):]
            st = os.lstat(full)
            kind = stat.S_IFMT(st.st_mode)
            mode = "%04o" % stat.S_IMODE(st.st_mode)
            owner = "%d:%d" % (st.st_uid, st.st_gid)
            if stat.S_ISREG(kind):
                what = "f " + ("variable" if variable(rel) else digest(full))
            elif stat.S_ISLNK(kind):
                what = "l " + os.readlink(full)
            elif stat.S_ISDIR(kind):
                what = "d"
            else:
                what = "o %o" % kind
            out.append("%s %s %s %s" % (rel, mode, owner, what))
    sys.stdout.write("\n".join(out) + "\n")


main()
