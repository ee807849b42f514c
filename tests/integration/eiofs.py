#!/usr/bin/python3
"""A filesystem with a bad file: a read-only FUSE tree in which reading
`bad.bin` fails with EIO, the way a disk with a bad sector or an NFS
server that squashes root answers. Test instrument, not a fake of any
component: restic reads it like any other filesystem.

    /usr/bin/python3 eiofs.py MOUNTPOINT UID GID

Runs in the foreground (Debian's python3-fusepy, hence Debian's python)
and prints "ready" once the kernel has the mount; unmounting the point
ends it. Everything is owned by UID:GID.
"""

import errno
import stat
import sys
import time

from fusepy import FUSE, FuseOSError, Operations

FILES = {
    "/index.html": b"<h1>still here</h1>\n",
    "/notes/ok.txt": b"readable\n" * 100,
    "/notes/bad.bin": None,          # every read fails with EIO
}
BAD_SIZE = 4096


def dirs():
    out = {"/"}
    for p in FILES:
        parts = p.split("/")[1:-1]
        for i in range(len(parts)):
            out.add("/" + "/".join(parts[:i + 1]))
    return out


class EioFs(Operations):
    def __init__(self, uid, gid):
        self.uid, self.gid = uid, gid
        self.dirs = dirs()
        self.now = time.time()

    def init(self, path):
        print("ready", flush=True)

    def getattr(self, path, fh=None):
        base = {"st_uid": self.uid, "st_gid": self.gid, "st_atime": self.now, "st_mtime": self.now,
                "st_ctime": self.now}
        if path in self.dirs:
            return dict(base, st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        if path in FILES:
            data = FILES[path]
            size = BAD_SIZE if data is None else len(data)
            return dict(base, st_mode=stat.S_IFREG | 0o644, st_nlink=1, st_size=size)
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        names = [".", ".."]
        prefix = path.rstrip("/") + "/"
        for p in sorted(self.dirs | set(FILES)):
            if p != path and p.startswith(prefix) and "/" not in p[len(prefix):]:
                names.append(p[len(prefix):])
        return names

    def open(self, path, flags):
        if path not in FILES:
            raise FuseOSError(errno.ENOENT)
        return 0

    def read(self, path, size, offset, fh):
        data = FILES.get(path)
        if data is None:
            raise FuseOSError(errno.EIO)
        return data[offset:offset + size]


def main():
    mnt, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # nonempty: a home made by useradd holds its skeleton files beneath.
    FUSE(EioFs(uid, gid), mnt, foreground=True, ro=True, nothreads=True, nonempty=True)


if __name__ == "__main__":
    main()
