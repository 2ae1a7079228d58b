"""A file server on the real node for download actions: busybox httpd serving `FILES` from a
ConfigMap, reached pod to pod (fixture ``files`` in tests/conftest.py)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

HELLO = (
    b'#!/bin/sh\necho "from the tarball: $1" > /tmp/result\n'
    b"cat /tmp/lifecycle/greeting.txt >> /tmp/result 2>/dev/null || true\n"
)
"""bin/hello.sh of app.tgz; it adds the greeting of a cached dependency in /tmp/lifecycle."""


def tgz(files: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def tgz_links(entries: list[tuple[str, str | bytes]]) -> bytes:
    """A tgz of symlinks (a str is the link's target) and files (bytes are the body), in order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, what in entries:
            info = tarfile.TarInfo(name)
            if isinstance(what, str):
                info.type, info.linkname = tarfile.SYMTYPE, what
                tar.addfile(info)
            else:
                info.size, info.mode = len(what), 0o644
                tar.addfile(info, io.BytesIO(what))
    return out.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


LAUNCHER = b"""#!/bin/sh
# Stand-in for Diego's app lifecycle launcher: launcher <app dir> <command> <metadata>. Like the
# buildpack launcher it runs the command in the app directory when there is one (relative to the
# home directory it starts in); like the Docker launcher, where it is otherwise.
if [ -d "$1" ]; then cd "$1" || exit 1; fi
exec /bin/sh -c "$2"
"""
RUN_SH = b"""#!/bin/sh
# the droplet's start command: it runs from /home/vcap/app as vcap, as on a Diego cell
test "$(pwd)" = /home/vcap/app && test "$(id -u)" = 2000
"""

FILES = {
    "app.tgz": tgz({"bin/hello.sh": (HELLO, 0o755)}),
    "greeting.tgz": tgz({"greeting.txt": (b"hello from a cached dependency\n", 0o644)}),
    "notes.zip": zipped({"notes/a.txt": b"from the zip\n"}),
    "lifecycle.tgz": tgz({"launcher": (LAUNCHER, 0o755)}),
    "droplet.tgz": tgz({"app/run.sh": (RUN_SH, 0o755)}),
    # Issue 23, hole 2: archives whose entries write outside the destination through symlinks.
    "escape-absolute.tgz": tgz_links([("a", "/tmp"), ("a/pwned", b"written through a link\n")]),
    "escape-chain.tgz": tgz_links(
        [("y", "."), ("x", "y/.."), ("x/pwned", b"written one level up\n")]
    ),
}


def sha256(name: str) -> str:
    return hashlib.sha256(FILES[name]).hexdigest()


class FileServer:
    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.base = f"http://{ip}:8080"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"
