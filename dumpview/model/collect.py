"""Collecting devcoredumps before the kernel drops them: find the ones waiting in sysfs, copy
each into a directory compressed with zstd, prove the copy, then release it in the kernel.

A devcoredump lives in ``ROOT/class/devcoredump/devcdN/`` (ROOT is /sys): ``data`` holds the
dump (its size reads as 0; it is read as a stream), ``failing_device`` links to the device that
crashed. The kernel frees it when anything is written to ``data`` or when its timeout ends
(5 minutes by default; the Asahi GPU driver asks for 60). Until then the device cannot file
another one: the kernel discards new dumps of a device whose last one is still waiting.

Each copy is streamed (memory stays flat) and compressed through the project's one writer,
``dumpview.output.open_output``: into an anonymous temporary file in the directory (or one
created exclusively with an unpredictable name), mode 0600 (a crash dump holds GPU memory),
fsynced, then linked to its final name, never over anything (``no_clobber``: a name taken,
even at the last moment, gets ``-2``, ``-3``… before ``.dump.zst``), and the directory
fsynced. A stop signal before the link leaves nothing behind. The copy is proven by reading
it back: its decompressed bytes must hash (SHA-256) to what was read from ``data``, and a copy
that starts like an ELF file must open as a dump through the same decompressing open every
command uses. Only then is ``data`` written to (released), unless asked to keep it. A
devcoredump that is not an ELF core (other drivers write their own formats) is copied, proven
byte for byte, labelled "not an AGX dump" and released too: it was asked for and it is safe on
disk. One that looks like an ELF core but does not open is kept in the kernel (its timeout
still applies) and reported as a failure.

Failure modes: ``collect`` never raises for one dump's trouble; each ``Collected`` carries its
``error`` (one line naming the file and what failed). ``waiting_devcoredumps`` returns [] when
the class directory does not exist and raises ``OSError`` only for an unreadable one.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from dumpview.model.decompress import ELF_MAGIC, zstd
from dumpview.model.errors import DumpError
from dumpview.model.numbers import rounded_size
from dumpview.model.source import decompress_file
from dumpview.output import open_output

SYSFS_ROOT = "/sys"
SYSFS_ROOT_ENV = "DUMPVIEW_SYSFS_ROOT"  # another sysfs tree (tests, a copied tree)
CLASS_DIR = os.path.join("class", "devcoredump")
READ_SIZE = 1 << 20  # bytes gathered from ``data`` before compressing (sysfs gives a page a read)
ZSTD_LEVEL = 3  # zstd's default: ~1 GiB/s of dump on one core
SUFFIX = ".dump.zst"
NEW_FILE_MODE = 0o600  # crash dumps hold GPU memory: readable by their owner only


@dataclass(frozen=True)
class Waiting:
    """A devcoredump waiting in sysfs."""

    name: str  # devcdN
    directory: str
    device: str | None  # the failing device's name (the link target's last component)
    driver: str | None  # its driver's name, when sysfs links one
    created: float  # when it appeared (the devcdN directory's mtime), seconds since the epoch

    @property
    def data_path(self) -> str:
        return os.path.join(self.directory, "data")

    def file_name(self) -> str:
        """``DEVICE[-DRIVER]-YYYYmmddTHHMMSSZ.dump.zst`` (UTC), safe for any file system."""
        parts = [p for p in (self.device or self.name, self.driver) if p]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.created))
        base = re.sub(r"[^A-Za-z0-9._+-]", "_", "-".join(parts))
        return f"{base}-{stamp}{SUFFIX}"


@dataclass(frozen=True)
class Collected:
    """What ``collect`` did with one devcoredump."""

    waiting: Waiting
    path: str | None  # the copy (None: nothing was written)
    size_bytes: int  # of the dump as read from ``data``
    compressed_size_bytes: int
    agx: bool  # it opens as a dump and carries the AGX note
    label: str  # "AGX dump", "not an AGX dump (...)", ...
    panic: str | None  # the crash log's panic message, when it has one
    released: bool
    error: str | None = None  # None: collected; else why not (the copy may still exist)

    def line(self) -> str:
        """The one line ``dumpview collect`` prints for it."""
        where = self.path or self.waiting.data_path
        if self.error is not None:
            return f"{where}: {self.error}"
        packed = rounded_size(self.compressed_size_bytes, iec=True)
        size = f"{rounded_size(self.size_bytes, iec=True)} ({packed} zstd)"
        panic = f", panic: {self.panic}" if self.panic else ""
        fate = "released" if self.released else "kept in the kernel"
        return f"{where}: {size}, {self.label}{panic}; {fate}"


def sysfs_root(root: str | None = None) -> str:
    """``root``, else $DUMPVIEW_SYSFS_ROOT, else /sys."""
    return root or os.environ.get(SYSFS_ROOT_ENV) or SYSFS_ROOT


def waiting_devcoredumps(root: str | None = None) -> list[Waiting]:
    """Every ``devcdN`` under ROOT/class/devcoredump with a ``data`` file, in number order."""
    class_dir = os.path.join(sysfs_root(root), CLASS_DIR)
    try:
        names = os.listdir(class_dir)
    except FileNotFoundError:
        return []
    found = []
    for name in sorted(names, key=_devcd_number):
        directory = os.path.join(class_dir, name)
        if not name.startswith("devcd") or not os.path.exists(os.path.join(directory, "data")):
            continue
        try:
            created = os.stat(directory).st_mtime
        except OSError:
            created = time.time()
        device_link = os.path.join(directory, "failing_device")
        device = _link_name(device_link)
        driver = _link_name(os.path.join(device_link, "driver")) if device else None
        found.append(Waiting(name, directory, device, driver, created))
    return found


def _devcd_number(name: str) -> tuple[int, str]:
    digits = name.removeprefix("devcd")
    return (int(digits) if digits.isdigit() else 1 << 62, name)


def _link_name(path: str) -> str | None:
    try:
        return os.path.basename(os.readlink(path).rstrip("/")) or None
    except OSError:
        return None


def collect(out_dir: str, keep: bool = False, root: str | None = None) -> Iterator[Collected]:
    """Collect every waiting devcoredump into ``out_dir`` (see the module), one result each,
    as it is done."""
    for waiting in waiting_devcoredumps(root):
        yield collect_one(waiting, out_dir, keep)


def collect_one(waiting: Waiting, out_dir: str, keep: bool = False) -> Collected:
    """Copy, prove and (unless ``keep``) release one devcoredump."""
    result = Collected(waiting, None, 0, 0, False, "", None, False)
    try:
        path, size, packed, digest, head = _copy(waiting, out_dir)
    except (OSError, DumpError) as exc:
        return replace(result, error=f"copying {waiting.data_path} failed: {_reason(exc)}")
    result = replace(result, path=path, size_bytes=size, compressed_size_bytes=packed)
    try:
        agx, label, panic = _prove(path, size, digest, head)
    except (OSError, DumpError) as exc:
        why = f"the copy did not verify, {waiting.name} left in the kernel: {_reason(exc)}"
        return replace(result, error=why)
    result = replace(result, agx=agx, label=label, panic=panic)
    if keep:
        return result
    try:
        _release(waiting)
    except OSError as exc:
        why = f"copied, but releasing {waiting.data_path} failed: {_reason(exc)}"
        return replace(result, error=why)
    return replace(result, released=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f" ({exc.filename})" if exc.filename else "")
    return str(exc)


def _copy(waiting: Waiting, out_dir: str) -> tuple[str, int, int, str, bytes]:
    """Stream ``data`` into a zstd file in ``out_dir``, atomically: (path, dump bytes,
    compressed bytes, SHA-256 of the dump, its first bytes)."""
    src = os.open(waiting.data_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with open_output(
            os.path.join(out_dir, waiting.file_name()),
            binary=True,
            durable=True,
            no_clobber=True,
            suffix=SUFFIX,
            new_mode=NEW_FILE_MODE,
        ) as out:
            compressor = zstd.ZstdCompressor(
                options={
                    zstd.CompressionParameter.compression_level: ZSTD_LEVEL,
                    zstd.CompressionParameter.checksum_flag: 1,
                }
            )
            digest = hashlib.sha256()
            stage = bytearray(READ_SIZE)
            view = memoryview(stage)
            size = packed = 0
            head = b""
            while True:
                filled = 0
                while filled < READ_SIZE:
                    got = os.readv(src, [view[filled:]])
                    if not got:
                        break
                    filled += got
                chunk = view[:filled]
                if len(head) < len(ELF_MAGIC):
                    head += bytes(chunk[: len(ELF_MAGIC) - len(head)])
                digest.update(chunk)
                size += filled
                last = filled < READ_SIZE
                mode = zstd.ZstdCompressor.FLUSH_FRAME if last else zstd.ZstdCompressor.CONTINUE
                packed += out.write(compressor.compress(chunk, mode))
                if last:
                    break
    finally:
        os.close(src)
    return out.name, size, packed, digest.hexdigest(), head


def _prove(path: str, size: int, digest: str, head: bytes) -> tuple[bool, str, str | None]:
    """Read the copy back: its bytes must be the ones read from ``data``, and a copy that
    starts like an ELF file must open as a dump. (is AGX, label, panic message)."""
    from dumpview.model.dump import open_dump

    if head != ELF_MAGIC:
        check = hashlib.sha256()
        decompress_file(path, check.update)
        _same(path, digest, check.hexdigest())
        shown = head.hex(" ") if head else "nothing (empty)"
        return False, f"not an AGX dump (not an ELF core: it starts with {shown})", None
    with open_dump(path) as dump:
        if dump.size_bytes != size:
            raise DumpError(f"{path} decompresses to {dump.size_bytes:,} bytes, {size:,} were read")
        _same(path, digest, hashlib.sha256(dump.buffer).hexdigest())
        what = f"{dump.layout}, {dump.entry_format.name} entries"
        try:
            agx = dump.agx_info is not None
            log = dump.crashlog
        except DumpError as exc:
            return False, f"an ELF core whose notes do not parse ({exc})", None
        panic = None
        if log is not None:
            from formats import clhe

            message = clhe.panic_message(log)
            if message is not None:  # one line, whatever the firmware wrote
                panic = " ".join("".join(c if c.isprintable() else " " for c in message).split())
        if agx:
            return True, "AGX dump", panic
        return False, f"not an AGX dump ({what}, no AGX note)", panic


def _same(path: str, expected: str, got: str) -> None:
    if expected != got:
        raise DumpError(
            f"{path} does not hold the bytes read (SHA-256 {got[:16]}…, read {expected[:16]}…)"
        )


def _release(waiting: Waiting) -> None:
    """Write to ``data``: the kernel frees the devcoredump (any write does)."""
    fd = os.open(waiting.data_path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        os.write(fd, b"1")
    finally:
        os.close(fd)
