"""Where things live: the data root and the cache folder.

The data root is, in order: an explicit argument (CLI ``--data-root``), the ``BSCL_DATA_ROOT``
environment variable, then ``../shared/data`` beside the checkout (the folder that holds
``pyproject.toml``), then ``../shared/data`` relative to the working directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ENV_DATA_ROOT = "BSCL_DATA_ROOT"
ENV_CACHE = "BSCL_CACHE"


def checkout_root() -> Path | None:
    """The source checkout this package runs from (editable install), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "bscl").is_dir():
            return parent
    return None


def data_root(override: str | os.PathLike[str] | None = None, *, must_exist: bool = True) -> Path:
    """Resolve the data root (see the module docstring). Raises FileNotFoundError naming what to set."""
    candidates: list[Path] = []
    if override:
        candidates = [Path(override)]
    elif os.environ.get(ENV_DATA_ROOT):
        candidates = [Path(os.environ[ENV_DATA_ROOT])]
    else:
        root = checkout_root()
        if root is not None:
            candidates.append(root.parent / "shared" / "data")
        candidates.append(Path.cwd().parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    if not must_exist:
        return candidates[0]
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"data root not found (tried {tried}); pass --data-root DIR or set {ENV_DATA_ROOT}=DIR "
        "to the folder that holds stsb/, mrpc/, pfcc_snopes/, ..."
    )


def cache_dir() -> Path:
    """Cache folder for unpacked models and built tiny models (``BSCL_CACHE`` or ~/.cache/bscl)."""
    path = Path(os.environ.get(ENV_CACHE, Path.home() / ".cache" / "bscl"))
    path.mkdir(parents=True, exist_ok=True)
    return path


class NotWritableError(ValueError):
    """An output path cannot be written (checked before the work starts)."""


def ensure_writable(path: str | os.PathLike[str], option: str = "--train.output_dir") -> None:
    """Fail now (before any work) when ``path`` (a folder, or the nearest existing parent it would be
    created in) cannot be written: a probe file is created and removed (``os.access`` lies for root)."""
    target = Path(path).absolute()
    probe_dir = target
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise NotWritableError(f"{option} {path}: {probe_dir} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe_dir, prefix=".bscl-write-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise NotWritableError(
            f"{option} {path}: cannot write in {probe_dir} ({err.strerror}); choose a writable folder"
        ) from None


class EnvironmentFault(OSError):
    """The machine refused the work (disk full, permission denied, read-only file system): the message
    names the path and what to do. ``bscl`` prints it as one line and exits 1 (bad input exits 2)."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno  # type: ignore[misc]


#: the texts by which a write failure caused by a full disk shows in errors that carry no errno: torch's
#: zip writer (``PytorchStreamWriter failed writing file ...: file write failed``, ``[enforce fail at
#: inline_container.cc] . unexpected pos``) and safetensors' Rust writer (``os error 28``, ``StorageFull``)
_DISK_FULL_TEXTS = ("no space left", "file write failed", "unexpected pos", "os error 28", "storagefull")


def disk_full(err: BaseException) -> bool:
    """Whether ``err`` (an ``OSError``, or a library's error wrapping one) says that the disk is full."""
    import errno as E

    if isinstance(err, OSError) and err.errno in (E.ENOSPC, E.EDQUOT):
        return True
    text = str(err).lower()
    return any(t in text for t in _DISK_FULL_TEXTS)


def write_fault(err: BaseException, path: str | os.PathLike[str], advice: str) -> EnvironmentFault | None:
    """An :class:`EnvironmentFault` for a write into ``path`` that failed with ``err`` (disk full,
    permission denied, read-only), naming the path and ``advice`` (what to do next); None for any other
    error (a bug or bad input keeps its own message)."""
    import errno as E

    if isinstance(err, EnvironmentFault):
        return err
    if disk_full(err):
        return EnvironmentFault(
            f"no space left on the device of {path}: free some space, then {advice}", E.ENOSPC
        )
    if isinstance(err, OSError) and err.errno in (E.EACCES, E.EPERM, E.EROFS):
        where = err.filename or path
        return EnvironmentFault(
            f"cannot write {where} ({err.strerror}): fix its permissions, then {advice}", err.errno
        )
    return None
