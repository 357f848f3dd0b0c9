"""The variant bank: each (layer, level) compressed once, stored, and read back by key.

Calibrated quantization (GPTQ) costs seconds per layer, far more than a trial should spend, and
its result depends only on the layer's weight, its calibration Hessian, the level and the
method. The bank computes each such entry once and keeps it:

* in memory, for the process that built or loaded it;
* on disk, when given a directory: one safetensors file per entry, named by its key (a hash of
  everything that determines it: the weight's bytes, the Hessian's bytes, the level, the method
  and its options, the library version and :data:`FORMAT_VERSION`), so a changed weight or
  calibration set is simply another entry, never a stale one. A quantized weight with its grid
  is stored as its int codes, bit-packed, beside the grid (``_packing``; 4-8x smaller than
  float32) and dequantized once per process when read, bit for bit; other entries as they are.
  Each file records its key, its format and a SHA-256 of what it stores; a file whose key,
  format or checksum does not match is logged, rebuilt and replaced, never used.

GPTQ entries are keyed by their Hessian's digest; collecting the Hessians is a pass of the model
over the calibration data (minutes for a language model on CPU), so the bank also keeps, per
calibration (a digest of the model's state and the calibration batches), the digests of its
layers' Hessians in a small JSON file: a space built again on the same model and data finds its
keys there, and collects nothing when every entry it lists is in the bank.

Several processes (Ray workers on one node, or on nodes sharing the directory) may build the
same entry: a lock file per entry makes the second wait for the first and read its result, so
each entry is computed once.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

_LOG = logging.getLogger("tradeoff.spaces")

FORMAT_VERSION = "3"
"""Bumped whenever what an entry holds for a given key, or how its file stores it, changes
(quantizer code fixes too). 2: calibrated int levels keep their grid (``scale``, ``zero``)
beside the weight, for export. 3: files hold the int codes packed (``_packing``), not the
dequantized float weight; HQQ entries keep their grid too."""


DEFAULT_DIRECTORY = "~/.cache/tradeoff/bank"
"""Where calibrated entries go unless a space is given ``bank=``; ``$TRADEOFF_CACHE/bank`` if
that variable is set."""


def default_directory() -> Path:
    root = os.environ.get("TRADEOFF_CACHE")
    return Path(root) / "bank" if root else Path(DEFAULT_DIRECTORY).expanduser()


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (any device; copied to CPU to hash)."""
    t = tensor.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def entry_digest(entry: torch.Tensor | dict[str, torch.Tensor]) -> str:
    """SHA-256 of an entry: a tensor's :func:`tensor_digest`, or a hash of a dict's names and
    their tensors' digests."""
    if isinstance(entry, torch.Tensor):
        return tensor_digest(entry)
    h = hashlib.sha256()
    for name in sorted(entry):
        h.update(f"{name}:{tensor_digest(entry[name])};".encode())
    return h.hexdigest()


def _to_cpu(entry: Any) -> Any:
    if isinstance(entry, torch.Tensor):
        return entry.detach().to("cpu").contiguous()
    return {k: v.detach().to("cpu").contiguous() for k, v in entry.items()}


def entry_nbytes(entry: Any) -> int:
    """Bytes held by an entry: a tensor, or a dict of named tensors."""
    tensors = [entry] if isinstance(entry, torch.Tensor) else entry.values()
    return sum(t.untyped_storage().nbytes() for t in tensors)


def entry_key(**parts: Any) -> str:
    """The key of an entry: a hash of ``parts`` (JSON-serializable) and the bank's version."""
    from tradeoff import __version__

    text = json.dumps({**parts, "bank": FORMAT_VERSION, "tradeoff": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


class VariantBank:
    """Compressed weights by key: in memory, and in ``directory`` when one is given.

    An entry is a tensor, or a dict of named tensors (a quantized weight with its grid:
    ``weight``, ``scale``, ``zero``); it is read back as it was stored, bit for bit. In memory
    entries are held as given (dequantized: assembly swaps pointers to them); on disk a weight
    on its grid is held as packed codes, dequantized when the file is read.

    Args:
        directory: Where entries are stored (created if missing); ``None``: memory only.
        max_memory_mb: At most this many megabytes of entries held in memory by a process
            (each bank copy, one per Ray worker, has its own); the least recently used are
            forgotten beyond it and read again from ``directory`` when next used. ``None``:
            no limit (every entry used stays, the fastest). With a limit, on Linux (glibc),
            the process serves allocations of 128 KiB and more from their own mappings (as
            ``MALLOC_MMAP_THRESHOLD_=131072`` would; unless that variable is set), so that a
            forgotten entry's memory goes back to the system: without it glibc kept the
            freed memory and a 650 MB limit lowered SmolLM2's peak by 5% (the README's "bank
            memory limit"). Process-wide, and it costs evaluations some time (measured there).

    Raises:
        TypeError: ``max_memory_mb`` is not a number.
        ValueError: ``directory`` cannot be created or written to, or ``max_memory_mb`` is
            not positive or is given without a directory.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        max_memory_mb: float | None = None,
    ) -> None:
        self.directory = None if directory is None else Path(directory).expanduser()
        self.max_memory_mb = _check_limit(max_memory_mb, self.directory)
        if self.directory is not None:
            _check_writable(self.directory)
        if self.max_memory_mb is not None:
            return_freed_memory()
        self._memory: OrderedDict[str, Any] = OrderedDict()  # least recently used first
        self._held = 0  # bytes in _memory
        self._verified: dict[str, tuple[int, int]] = {}  # key -> its file's (size, mtime_ns)
        self._lock = threading.Lock()
        self.built = 0
        """Entries this process computed."""
        self.loaded = 0
        """Entries this process read from the directory."""
        self.rebuilt = 0
        """Entries found corrupt or mismatched on disk and computed again."""

    def __getstate__(self) -> dict[str, Any]:
        # With a directory, entries travel on disk (each process loads what it uses, once);
        # without one, they travel with the bank.
        state = {k: v for k, v in self.__dict__.items() if k != "_lock"}
        if self.directory is not None:
            state["_memory"], state["_held"] = OrderedDict(), 0
        state["_verified"] = {}  # another process checks the files itself
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        if self.max_memory_mb is not None:  # a worker process's copy
            return_freed_memory()

    def __contains__(self, key: str) -> bool:
        return key in self._memory or (self.directory is not None and self._path(key).exists())

    def __len__(self) -> int:
        """Entries held in this process's memory."""
        return len(self._memory)

    def get(
        self,
        key: str,
        compute: Callable[[], Any],
        *,
        describe: str = "",
        group_size: int | None = None,
    ) -> Any:
        """The entry ``key``: from memory, else from disk, else ``compute()`` (then stored).

        Args:
            key: From :func:`entry_key`.
            compute: Makes the entry (a tensor or a dict of tensors) when it is nowhere yet.
            describe: What the entry is, for log messages and file metadata (layer, level).
            group_size: Inputs per scale of the entry's grid (``None``: one per row), for
                storing its codes packed.
        """
        found = self._memory.get(key)
        if found is not None and self.max_memory_mb is None:
            return found
        with self._lock:  # one thread per process computes; others wait and read it
            found = self._memory.get(key)
            if found is None:
                found = self._fetch(key, compute, describe, group_size)
                self._hold(key, found)
            else:
                self._memory.move_to_end(key)
        return found

    def verify(self, key: str) -> bool:
        """Whether the entry is in memory, or on disk with its key and checksum intact (a corrupt
        file is logged and removed, so the entry is computed again). A file this process
        already verified or wrote is not read again while its size and modification time
        stay the same (a resumed ``build`` of a large bank reads nothing)."""
        if key in self._memory:
            return True
        if self.directory is None:
            return False
        with self._lock, self._file_lock(key):
            stamp = self._stamp(key)
            if stamp is not None and self._verified.get(key) == stamp:
                return True
            return self._read(key, decode=False) is not None

    def put(
        self, key: str, entry: Any, *, describe: str = "", group_size: int | None = None
    ) -> None:
        """Store an entry computed elsewhere (a parallel build returns its tensors here);
        arguments as :meth:`get`'s."""
        value = _to_cpu(entry)
        with self._lock:
            if self.directory is not None:
                with self._file_lock(key):
                    if self._read(key, decode=False) is None:
                        self._write(key, value, describe, group_size)
            self._hold(key, value)

    def _hold(self, key: str, entry: Any) -> None:
        """Keep ``entry`` in memory (the lock held), then forget the least recently used
        others while the limit is exceeded."""
        old = self._memory.pop(key, None)
        self._held += entry_nbytes(entry) - (0 if old is None else entry_nbytes(old))
        self._memory[key] = entry
        if self.max_memory_mb is None:
            return
        while self._held > self.max_memory_mb * 1e6 and len(self._memory) > 1:
            _, gone = self._memory.popitem(last=False)
            self._held -= entry_nbytes(gone)

    def _fetch(
        self, key: str, compute: Callable[[], Any], describe: str, group_size: int | None
    ) -> Any:
        if self.directory is None:
            self.built += 1
            return _to_cpu(compute())
        with self._file_lock(key):
            stored = self._read(key)
            if stored is not None:
                self.loaded += 1
                return stored
            value = _to_cpu(compute())
            self.built += 1
            self._write(key, value, describe, group_size)
            return value

    def release(self) -> int:
        """Forget the entries held in memory whose file is in the directory (the next
        :meth:`get` reads them again); a memory-only bank keeps everything, having no other
        copy. Tensors still referenced elsewhere (a model assembled from them) stay alive
        there.

        Returns:
            The bytes of the entries forgotten.
        """
        if self.directory is None:
            return 0
        with self._lock:
            gone = [key for key in list(self._memory) if self._path(key).exists()]
            freed = sum(entry_nbytes(self._memory.pop(key)) for key in gone)
            self._held -= freed
        return freed

    def prune(self, *, tmp_age_s: float = 3600.0) -> tuple[int, int]:
        """Remove what this version never reads from the directory: entries written in another
        bank format, with their lock files (an upgrade changes every key, so the old files
        stay behind: a SmolLM2 bank in format 2 is 2.6 GB), and temporary files of writes
        interrupted more than ``tmp_age_s`` seconds ago. Entries are told by their header
        only (no tensor is read); each is removed holding its lock.

        Returns:
            (files removed, bytes freed).
        """
        if self.directory is None:
            return 0, 0
        removed = freed = 0
        now = time.time()
        for path in sorted(self.directory.iterdir()):
            try:
                if path.suffix == ".tmp" and now - path.stat().st_mtime > tmp_age_s:
                    size = path.stat().st_size
                    path.unlink()
                elif path.suffix == ".safetensors" and _foreign(path):
                    key = path.name.removesuffix(".safetensors")
                    with self._lock, self._file_lock(key):
                        size = path.stat().st_size if _foreign(path) else -1
                        if size >= 0:
                            path.unlink()
                    if size >= 0:
                        path.with_suffix(".lock").unlink(missing_ok=True)
                else:
                    continue
            except FileNotFoundError:  # another process removed it first
                continue
            if size >= 0:
                removed, freed = removed + 1, freed + size
        if removed:
            _LOG.info(
                "Variant bank %s: removed %d files of other formats or interrupted writes, "
                "%.1f MB.", self.directory, removed, freed / 1e6,
            )  # fmt: skip
        return removed, freed

    def hessian_digests(self, calibration: str) -> dict[str, str] | None:
        """Layer -> Hessian digest kept for the calibration digest ``calibration`` (see
        :class:`~tradeoff.spaces._quantizers.HessianSource`), or ``None``: memory-only bank,
        none kept, or a file that does not read back as written."""
        if self.directory is None:
            return None
        try:
            found = json.loads(self._hessians_path(calibration).read_text())
        except (OSError, ValueError):
            return None
        ok = isinstance(found, dict) and found.get("calibration") == calibration
        digests = found.get("digests") if ok else None
        if not isinstance(digests, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in digests.items()
        ):
            return None
        return digests

    def keep_hessian_digests(self, calibration: str, digests: dict[str, str]) -> None:
        """Keep ``digests`` (layer -> Hessian digest) for the calibration digest
        ``calibration``, merged with those already kept (written whole or not at all)."""
        if self.directory is None:
            return
        path = self._hessians_path(calibration)
        with self._file_lock(path.stem):  # not self._lock: get() may hold it, collecting
            merged = {**(self.hessian_digests(calibration) or {}), **digests}
            text = json.dumps({"calibration": calibration, "digests": merged}, sort_keys=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)

    # Files ----------------------------------------------------------------------------------
    def _hessians_path(self, calibration: str) -> Path:
        assert self.directory is not None
        return self.directory / f"hessians-{calibration[:40]}.json"

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.safetensors"

    def _read(self, key: str, *, decode: bool = True) -> Any:
        """The verified entry on disk (``decode=False``: ``True`` for an intact file), or
        ``None`` (missing, or corrupt, stale or of another format: then logged, removed)."""
        from safetensors import safe_open

        path = self._path(key)
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                stored = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
            problem = None
            if meta.get("format") != FORMAT_VERSION:
                problem = (
                    f"it was written in bank format {meta.get('format', '2 or older')}, "
                    f"not {FORMAT_VERSION}"
                )
            elif meta.get("key") != key:
                problem = f"its key is {meta.get('key')!r}"
            elif meta.get("sha256") != _stored_digest(stored, meta.get("codec", "")):
                problem = "its checksum does not match its data"
            else:
                entry = _decoded(stored, meta) if decode else True
        except Exception as error:  # unreadable: truncated, not safetensors, ...
            problem = f"it cannot be read ({type(error).__name__}: {error})"
        if problem is None:
            self._remember(key)
            return entry
        _LOG.warning("Variant bank entry %s is corrupt (%s); rebuilding it.", path, problem)
        self.rebuilt += 1
        path.unlink(missing_ok=True)
        return None

    def _write(self, key: str, entry: Any, describe: str, group_size: int | None) -> None:
        from safetensors.torch import save_file

        from tradeoff.spaces._packing import pack_entry

        assert self.directory is not None
        kind = "tensor" if isinstance(entry, torch.Tensor) else "dict"
        tensors, codec = pack_entry(
            {"weight": entry} if isinstance(entry, torch.Tensor) else entry, group_size
        )
        text = json.dumps(codec, sort_keys=True)
        meta = {
            "key": key,
            "format": FORMAT_VERSION,
            "codec": text,
            "sha256": _stored_digest(tensors, text),
            "what": describe,
            "kind": kind,
        }
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, self._path(key))  # readers see a whole file or none
        finally:
            Path(tmp).unlink(missing_ok=True)
        self._remember(key)

    def _remember(self, key: str) -> None:
        stamp = self._stamp(key)
        if stamp is not None:
            self._verified[key] = stamp

    def _stamp(self, key: str) -> tuple[int, int] | None:
        """The entry file's (size, modification time in ns), or None when it is missing."""
        try:
            stat = self._path(key).stat()
        except FileNotFoundError:
            return None
        return stat.st_size, stat.st_mtime_ns

    @contextlib.contextmanager
    def _file_lock(self, key: str) -> Iterator[None]:
        """Exclusive across processes (``flock`` on a lock file per entry) where available."""
        try:
            import fcntl
        except ImportError:  # Windows: entries may be computed twice, still written atomically
            yield
            return
        assert self.directory is not None
        lock_path = self.directory / f"{key}.lock"
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _foreign(path: Path) -> bool:
    """Whether the entry file ``path`` is of another bank format (or unreadable: no version
    can use it); only its header is read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") != FORMAT_VERSION
    except Exception:
        return True


def _stored_digest(stored: dict[str, torch.Tensor], codec: str) -> str:
    """SHA-256 of a file's tensors and its codec (how they decode)."""
    return hashlib.sha256(f"{codec};{entry_digest(stored)}".encode()).hexdigest()


def _decoded(stored: dict[str, torch.Tensor], meta: dict[str, str]) -> Any:
    """The entry a file's tensors and metadata hold, dequantized."""
    from tradeoff.spaces._packing import unpack_entry

    entry = unpack_entry(stored, json.loads(meta["codec"]))
    return entry["weight"] if meta.get("kind") == "tensor" else entry


MMAP_THRESHOLD = 128 * 1024  # glibc's initial M_MMAP_THRESHOLD, kept from rising
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, malloc.h


def return_freed_memory() -> bool:
    """Make this process's allocator give freed memory back to the system (glibc only):
    allocations of ``MMAP_THRESHOLD`` bytes and more get their own mappings, unmapped when
    freed. glibc raises that threshold to the size of the largest mapping freed (up to 32
    MiB), after which a bank's entries (1-4 MB weights) come from the heap, whose freed
    memory it keeps. Leaves a ``MALLOC_MMAP_THRESHOLD_`` the user set alone.

    Returns:
        Whether the threshold was set (``False``: not glibc, or the user's variable).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # musl and others: no mallopt to call
        return False


def _check_limit(max_memory_mb: float | None, directory: Path | None) -> float | None:
    if max_memory_mb is None:
        return None
    if isinstance(max_memory_mb, bool) or not isinstance(max_memory_mb, (int, float)):
        raise TypeError(f"max_memory_mb must be a number or None, got {max_memory_mb!r}.")
    if not max_memory_mb > 0:
        raise ValueError(f"max_memory_mb must be positive, got {max_memory_mb!r}.")
    if directory is None:
        raise ValueError(
            "max_memory_mb needs a bank directory: a memory-only bank has no other copy of "
            "the entries it would forget. Give VariantBank a directory."
        )
    return float(max_memory_mb)


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".probe"):
            pass
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        hint = " (read-only)" if error.errno in (errno.EACCES, errno.EROFS, errno.EPERM) else ""
        raise ValueError(
            f"bank directory {str(directory)!r} is not writable{hint}: {reason}. Pass "
            "bank=<a writable directory>, or bank=None to keep the variant bank in memory."
        ) from None
