"""An agent's control files, read and written as hostile input (README, "What an agent can and cannot do").

Without cw's sandbox (`--agents-in-sandbox`), an agent runs as the orchestrator's own user and can
replace any file of its control directory: with a FIFO (a read blocks a worker thread forever),
with a symlink or a hard link (to /dev/zero, to the orchestrator's token, to a file a write would
then overwrite), with a file of any size. So every file here is opened relative to a directory
descriptor of its control directory, never following a symlink (`O_NOFOLLOW`), never blocking
(`O_NONBLOCK`), a regular file with one link only (`fstat`), and read up to a cap. Writes go to a
fresh temporary name (`O_CREAT | O_EXCL`: a planted name is refused, never followed), renamed
over the target: a symlink standing there is replaced, never written through. Whatever fails these
checks raises `UnsafeControlFile`: that run's error, never the orchestrator's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

# Every agent's shim imports this module: typing and collections.abc only for annotations (mypy
# reads this name as true), `secrets` not at all (`os.urandom` is what it reads from).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

# More than any control file cw writes or reads back needs (a prompt, a signal file, a report).
DEFAULT_CAP = 4 * 1024 * 1024
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeControlFile(OSError):
    """A control file that is not a plain file of its own (a FIFO, a device, a symlink, a hard
    link), or is larger than its cap."""


@contextlib.contextmanager
def directory(path: Path) -> Iterator[int]:
    """A descriptor of `path` itself (not of what a symlink there names)."""
    try:
        descriptor = os.open(path, _DIRECTORY_FLAGS)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeControlFile(f"{path.name}: not a directory of its own") from error
        raise
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def _open_plain(directory_fd: int, name: str) -> int:
    """A read descriptor of `name`, checked to be a regular file with a single link."""
    try:
        descriptor = os.open(name, _READ_FLAGS, dir_fd=directory_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeControlFile(f"{name}: a symlink, not a file") from error
        raise
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(descriptor)
        raise UnsafeControlFile(f"{name}: not a regular file of its own")
    os.set_blocking(descriptor, True)
    return descriptor


@contextlib.contextmanager
def open_plain(path: Path) -> Iterator[BinaryIO]:
    """`path` opened for reading, a regular file with a single link (FileNotFoundError when missing)."""
    with directory(path.parent) as parent:
        handle = os.fdopen(_open_plain(parent, path.name), "rb")
    with handle:
        yield handle


def read_bytes(path: Path, cap: int = DEFAULT_CAP) -> bytes | None:
    """The whole file, None when it is missing; UnsafeControlFile beyond `cap` bytes."""
    try:
        with open_plain(path) as handle:
            data = handle.read(cap + 1)
    except FileNotFoundError:
        return None
    if len(data) > cap:
        raise UnsafeControlFile(f"{path.name}: larger than {cap} bytes")
    return data


def read_text(path: Path, cap: int = DEFAULT_CAP) -> str | None:
    data = read_bytes(path, cap)
    return None if data is None else data.decode(errors="replace")


def size(path: Path) -> int:
    """The file's size (0 when missing or not a plain file: nothing of it is read)."""
    try:
        with open_plain(path) as handle:
            return os.fstat(handle.fileno()).st_size
    except OSError:
        return 0


@contextlib.contextmanager
def directory_beneath(root: Path, relative: Path, create: bool = False) -> Iterator[int | None]:
    """A descriptor of `root/relative` reached one directory at a time, never through a symlink
    (an agent may have left one anywhere under its own directories); missing directories made
    (private) when `create`, else None. UnsafeControlFile when a part is no directory of its own."""
    with directory(root) as top:
        current = os.dup(top)
    try:
        for part in relative.parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=current)
            try:
                following = os.open(part, _DIRECTORY_FLAGS, dir_fd=current)
            except FileNotFoundError:
                if create:
                    raise
                os.close(current)
                current = -1
                break
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeControlFile(f"{part}: not a directory of its own") from error
                raise
            os.close(current)
            current = following
        yield current if current >= 0 else None
    finally:
        if current >= 0:
            os.close(current)


def make_directories(root: Path, relative: Path) -> None:
    """`root/relative` made (private), no part of it through a symlink."""
    with directory_beneath(root, relative, create=True):
        pass


def unlink_beneath(root: Path, relative: Path) -> None:
    """`root/relative` removed when it is there, reached without following any symlink: a file of
    that name elsewhere, where a symlink an agent left would lead, stays (and nothing is said:
    what is not under `root` is no file of the run's)."""
    with contextlib.suppress(FileNotFoundError, UnsafeControlFile), directory_beneath(root, relative.parent) as parent:
        if parent is not None:
            os.unlink(relative.name, dir_fd=parent)


def write_private(path: Path, data: str | bytes, sync: bool = False) -> None:
    """`data` as the whole of `path`, readable by the user alone, replacing whatever stands there
    (a symlink is replaced, never followed)."""
    payload = data.encode() if isinstance(data, str) else data
    temporary = f".{path.name}.{os.urandom(8).hex()}.tmp"
    with directory(path.parent) as parent:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(temporary, flags, 0o600, dir_fd=parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(payload)
                if sync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, path.name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
            raise
