"""The vdir on disk: one folder per collection, one ``.ics`` file per item.

Promises:

* **Nothing is written outside the root.** Folder names come from :func:`safe_name` of the
  collection id, item names from :func:`href_for_uid` (or an href that passes
  :func:`is_item_href`, a single path component). A collection folder is resolved and refused
  unless it lies inside the root; an item that is a symbolic link is resolved the same way
  before it is read or replaced, so a symlink pointing outside the root is refused on read and
  on write. (A plain item file needs no resolving: one component inside a checked folder.)
* **Atomic writes.** Content goes to a temp file in the same folder (``.jmapsyncd-*.tmp``, ignored
  by khal, todoman and our watcher), is fsynced and renamed over the target (or hard-linked, for
  a create that must not clobber); the folder is fsynced after renames and unlinks. A crash leaves
  either the old or the new file, plus at worst a stale temp file that
  :meth:`Vdir.cleanup_temp_files` removes.
* **Deferred durability, for bulk writes.** ``upload``/``update`` with ``durable=False`` are just
  as atomic but skip both flushes; :meth:`VdirCollection.flush` then makes every such write
  durable at once (``syncfs(2)`` where Linux has it, else an fsync per file and one of the
  folder). A caller that records a file as synced must call it first: three flushes per item
  would otherwise dominate a large download.
* **etags** are ``"<mtime_ns>;<inode>;<size>"`` taken from the file descriptor we wrote or read,
  so a change made by someone else after our write shows up as a different etag.
* Collection folders hold nothing but ``*.ics``, ``displayname`` and ``color``; a folder holding
  anything else is not deleted.

The etag check and the write are not one atomic step: an editor saving in the window between
them can still lose its write to ours. vdirsyncer and khal accept the same window. Likewise the
path checks guard against hostile names and links, not against another local user swapping a
link between our check and our write: the vdir is the user's own folder.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from jmapsyncd.errors import PreconditionFailed, StoreError
from jmapsyncd.vdir.color import normalize_color
from jmapsyncd.vdir.item import Item
from jmapsyncd.vdir.names import href_for_uid, is_item_href, is_temp_name, safe_name

__all__ = ["Vdir", "VdirCollection", "etag_of"]

log = logging.getLogger(__name__)

DISPLAYNAME = "displayname"
COLOR = "color"
_META_FILES = frozenset({DISPLAYNAME, COLOR})
#: Item and metadata files are private by default: calendars are personal data.
FILE_MODE = 0o600


def etag_of(st: os.stat_result) -> str:
    """The etag of a file from its stat result."""
    return f"{st.st_mtime_ns};{st.st_ino};{st.st_size}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs(2)`` as ``fd -> errno`` (0 on success), or None where there is none."""
    try:
        import ctypes  # only here: most runs never flush in bulk

        func = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]

    def call(fd: int) -> int:
        return 0 if func(fd) == 0 else ctypes.get_errno() or errno.EIO

    return call


def _flush_filesystem(folder: Path) -> bool:
    """Flush the whole file system holding ``folder``; False where that is not possible."""
    syncfs = _syncfs()
    if syncfs is None:
        return False
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        err = syncfs(fd)
    finally:
        os.close(fd)
    if err:
        raise OSError(err, f"syncfs: {os.strerror(err)}")
    return True


def _encode(item: Item) -> bytes:
    try:
        return item.text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreError(f"item text cannot be stored as UTF-8: {exc}") from exc


def _is_valid_folder_name(name: str) -> bool:
    return (
        bool(name)
        and not name.startswith(".")
        and name.isprintable()
        and not any(c in name for c in "/\\")
        and len(name.encode("utf-8", "surrogatepass")) <= 255
    )


class _Confined:
    """Path checks shared by the store and its collections."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _inside(self, path: Path) -> Path:
        """``path`` if it resolves to a location strictly inside the root, else StoreError."""
        try:
            resolved = path.resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop on older Pythons
            raise StoreError(f"cannot resolve {path}: {exc}") from exc
        if resolved == self._root or not resolved.is_relative_to(self._root):
            raise StoreError(f"refusing {path}: it resolves outside the vdir root")
        return path


class VdirCollection(_Confined):
    """One collection folder. Create through :meth:`Vdir.create_collection`."""

    def __init__(self, root: Path, name: str) -> None:
        super().__init__(root)
        if not _is_valid_folder_name(name):
            raise StoreError(f"not a valid collection name: {name!r}")
        self._name = name
        self.path = root / name
        self._dir = str(self.path)
        self._tmp_prefix = f"{self._dir}/.jmapsyncd-{secrets.token_hex(6)}-"
        self._tmp_seq = itertools.count()
        self._unflushed: list[str | Path] = []  # written with durable=False, not flushed yet

    def __repr__(self) -> str:
        return f"VdirCollection({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self._name

    # -- paths ---------------------------------------------------------------------------------

    def _new_item_path(self, href: str) -> str:
        """The path of an item to create: one component in the (checked) folder.

        A plain string (a pathlib join costs as much as a syscall per downloaded item). The
        caller only ever creates it without following links (hard link, no clobber), so
        whatever link may be there is never followed and needs no check.
        """
        if not is_item_href(href):
            raise StoreError(f"not an acceptable item name: {href!r}")
        self._check_folder_link()
        return f"{self._dir}/{href}"

    def _item_path(self, href: str) -> Path:
        """The path of an item: one component in the (checked) folder; a link is resolved."""
        path = Path(self._new_item_path(href))
        if os.path.islink(path):
            self._inside(path)
        return path

    def _meta_path(self, key: str) -> Path:
        return self._inside(self.path / key)

    def _check_folder(self) -> None:
        self._inside(self.path)
        if not self.path.is_dir():
            raise StoreError(f"collection folder is missing: {self.path}")

    def _check_folder_link(self) -> None:
        """The folder, checked on every item access at the cost of one ``lstat``.

        A real folder in the root needs no resolving; one that is (or became, since the last
        access) a symbolic link is resolved and refused unless it leads inside the root.
        """
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            raise StoreError(f"collection folder is missing: {self.path}") from None
        except OSError as exc:
            raise StoreError(f"cannot stat {self.path}: {exc}") from exc
        if stat.S_ISLNK(mode):
            self._inside(self.path)
        elif not stat.S_ISDIR(mode):
            raise StoreError(f"not a folder: {self.path}")

    # -- writing -------------------------------------------------------------------------------

    def _write(
        self,
        target: str | Path,
        data: bytes,
        *,
        replace: bool,
        previous: os.stat_result | None = None,
        durable: bool = True,
    ) -> os.stat_result:
        """Write ``data`` to ``target`` atomically; returns the stat of what we wrote.

        ``replace=False`` creates only: PreconditionFailed if ``target`` exists. ``previous`` is
        the stat of the file being replaced: the new mtime is made later than its mtime.
        ``durable=False`` leaves the flushes to :meth:`flush`.
        """
        # Unique per process and collection; O_EXCL settles any clash with a stale file.
        tmp = f"{self._tmp_prefix}{next(self._tmp_seq)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            fd = os.open(tmp, flags, FILE_MODE)
        except OSError as exc:
            raise StoreError(f"cannot create a temp file in {self.path}: {exc}") from exc
        tmp_left = True
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                # Taken from our own descriptor: rename and link keep mtime and inode.
                st = os.fstat(fd)
                if previous is not None and st.st_mtime_ns <= previous.st_mtime_ns:
                    # Coarse clocks give two quick writes the same mtime, and the inode of the
                    # replaced file is free for reuse: without this an old etag could match.
                    os.utime(fd, ns=(st.st_atime_ns, previous.st_mtime_ns + 1))
                    st = os.fstat(fd)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if replace:
                os.replace(tmp, target)
                tmp_left = False
            else:
                self._link_no_clobber(tmp, target)
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc}") from exc
        finally:
            if tmp_left:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        if durable:
            _fsync_dir(self.path)
        else:
            self._unflushed.append(target)
        return st

    def flush(self, hrefs: Iterable[str] = ()) -> None:
        """Make every write made with ``durable=False`` durable (its data and its name).

        ``hrefs``: items written so by an earlier process (found again after a crash), to make
        durable as well.
        """
        self._unflushed.extend(self._item_path(h) for h in hrefs)
        if not self._unflushed:
            return
        try:
            if not _flush_filesystem(self.path):
                for path in self._unflushed:
                    with contextlib.suppress(FileNotFoundError):
                        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)
                _fsync_dir(self.path)
        except OSError as exc:
            raise StoreError(f"cannot flush {self.path} to disk: {exc}") from exc
        self._unflushed.clear()

    @staticmethod
    def _link_no_clobber(tmp: str, target: str | Path) -> None:
        try:
            os.link(tmp, target, follow_symlinks=False)
        except FileExistsError:
            name = os.path.basename(target)
            raise PreconditionFailed(f"item already exists: {name}") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # Filesystems without hard links: check, then rename (a small race we accept).
            if os.path.lexists(target):
                name = os.path.basename(target)
                raise PreconditionFailed(f"item already exists: {name}") from None
            os.rename(tmp, target)

    def _current_stat(self, path: Path, href: str) -> os.stat_result:
        try:
            return os.stat(path)
        except FileNotFoundError:
            raise PreconditionFailed(f"item does not exist: {href}") from None
        except OSError as exc:
            raise StoreError(f"cannot stat {path}: {exc}") from exc

    # -- items ---------------------------------------------------------------------------------

    def list(self) -> Iterator[tuple[str, str]]:
        self._check_folder()
        with os.scandir(self.path) as entries:
            for entry in entries:
                if not is_item_href(entry.name):
                    continue
                try:
                    if entry.is_symlink():
                        self._inside(Path(entry.path))
                    st = entry.stat(follow_symlinks=True)
                except StoreError:
                    log.warning("skipping %s: symlink pointing outside the vdir", entry.path)
                    continue
                except FileNotFoundError:  # removed while we listed, or a dangling link
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield entry.name, etag_of(st)

    def has(self, href: str) -> bool:
        return os.path.isfile(self._item_path(href))

    def get(self, href: str) -> tuple[Item, str]:
        path = self._item_path(href)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise PreconditionFailed(f"item does not exist: {href}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        with os.fdopen(fd, "rb") as fp:
            st = os.fstat(fp.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"not a regular file: {path}")
            data = fp.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(f"{path} is not UTF-8: {exc}") from exc
        return Item(text), etag_of(st)

    def upload(
        self, item: Item, href: str | None = None, *, durable: bool = True
    ) -> tuple[str, str]:
        if href is None:
            if item.uid is None:
                raise StoreError("cannot name an item without a UID")
            href = href_for_uid(item.uid)
        path = self._new_item_path(href)
        st = self._write(path, _encode(item), replace=False, durable=durable)
        return href, etag_of(st)

    def update(self, href: str, item: Item, etag: str, *, durable: bool = True) -> str:
        path = self._item_path(href)
        st = self._current_stat(path, href)
        current = etag_of(st)
        if current != etag:
            raise PreconditionFailed(f"{href} changed on disk (etag {current}, expected {etag})")
        return etag_of(self._write(path, _encode(item), replace=True, previous=st, durable=durable))

    def delete(self, href: str, etag: str) -> None:
        path = self._item_path(href)
        current = etag_of(self._current_stat(path, href))
        if current != etag:
            raise PreconditionFailed(f"{href} changed on disk (etag {current}, expected {etag})")
        try:
            os.unlink(path)
        except FileNotFoundError:
            raise PreconditionFailed(f"item does not exist: {href}") from None
        except OSError as exc:
            raise StoreError(f"cannot delete {path}: {exc}") from exc
        _fsync_dir(self.path)

    # -- metadata ------------------------------------------------------------------------------

    def _get_meta(self, key: str) -> str | None:
        path = self._meta_path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        text = text.strip()
        return text or None

    def _set_meta(self, key: str, value: str | None) -> None:
        self._check_folder()
        path = self._meta_path(key)
        if value is None or not value.strip():
            try:
                os.unlink(path)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise StoreError(f"cannot delete {path}: {exc}") from exc
            _fsync_dir(self.path)
            return
        self._write(path, value.encode("utf-8"), replace=True)

    def get_displayname(self) -> str | None:
        return self._get_meta(DISPLAYNAME)

    def set_displayname(self, value: str | None) -> None:
        # One line: khal shows the file's content verbatim.
        self._set_meta(DISPLAYNAME, None if value is None else " ".join(value.split()))

    def get_color(self) -> str | None:
        return normalize_color(self._get_meta(COLOR))

    def set_color(self, value: str | None) -> None:
        if value is None:
            self._set_meta(COLOR, None)
            return
        color = normalize_color(value)
        if color is None:
            raise StoreError(f"not a colour: {value!r}")
        self._set_meta(COLOR, color)


class Vdir(_Confined):
    """The vdir root. Collections are folders named by :func:`safe_name` of their id."""

    def __init__(self, root: Path | str, *, create: bool = True) -> None:
        path = Path(root).expanduser()
        if create:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the vdir root {path}: {exc}") from exc
        if not path.is_dir():
            raise StoreError(f"the vdir root is not a folder: {path}")
        super().__init__(path.resolve())
        self.root = self._root

    def __repr__(self) -> str:
        return f"Vdir({str(self.root)!r})"

    def collection_name(self, collection_id: str) -> str:
        return safe_name(collection_id)

    def list_collections(self) -> Iterator[str]:
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not _is_valid_folder_name(entry.name):
                    continue
                try:
                    self._inside(Path(entry.path))
                except StoreError:
                    log.warning("skipping %s: symlink pointing outside the vdir", entry.path)
                    continue
                if entry.is_dir(follow_symlinks=True):
                    yield entry.name

    def create_collection(self, collection_id: str) -> VdirCollection:
        collection = VdirCollection(self.root, self.collection_name(collection_id))
        path = self._inside(collection.path)
        if not path.is_dir():
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                if not path.is_dir():
                    raise StoreError(f"{path} exists and is not a folder") from None
            except OSError as exc:
                raise StoreError(f"cannot create {path}: {exc}") from exc
            _fsync_dir(self.root)
        return collection

    def get_collection(self, name: str) -> VdirCollection:
        collection = VdirCollection(self.root, name)
        collection._check_folder()
        return collection

    def delete_collection(self, name: str) -> None:
        collection = VdirCollection(self.root, name)
        path = self._inside(collection.path)
        if not path.exists():
            return
        if path.is_symlink() or not path.is_dir():
            raise StoreError(f"refusing to delete {path}: not a plain folder")
        names = os.listdir(path)
        # Refuse rather than guess: anything we did not put there may be the user's.
        strangers = [
            n for n in names if not (is_item_href(n) or n in _META_FILES or is_temp_name(n))
        ]
        if strangers:
            raise StoreError(f"refusing to delete {path}: it holds other files {sorted(strangers)}")
        try:
            for n in names:
                os.unlink(path / n)
            path.rmdir()
        except OSError as exc:
            raise StoreError(f"cannot delete {path}: {exc}") from exc
        _fsync_dir(self.root)

    def cleanup_temp_files(self) -> list[Path]:
        """Remove temp files left by an interrupted write; returns what was removed.

        Only safe while no write is in progress (at startup, before the first sync).
        """
        removed: list[Path] = []
        folders = [self.root, *(self.root / n for n in self.list_collections())]
        for folder in folders:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
        return removed
