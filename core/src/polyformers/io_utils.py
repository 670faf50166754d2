"""File helpers: atomic writes, and the one reader of our JSON files.

A write goes to a temporary name in the same directory, then is renamed: an interrupted save
therefore leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Callable, Iterator


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``final_path``; on success rename it onto ``final_path``."""
    final_path = os.fspath(final_path)
    directory = os.path.dirname(os.path.abspath(final_path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(final_path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def atomic_write_with(path: str | os.PathLike, writer: Callable[[str], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)


def read_json_file(path: str | os.PathLike, error: type[Exception] = OSError, *, want_object: bool = True) -> Any:
    """The JSON value in ``path``, or ``error`` (naming the file and how to fix it) if it is not JSON.

    Not JSON means: not UTF-8, not valid JSON, or nested too deeply for Python's parser (a hostile
    file of ``[[[[...`` exhausts the recursion limit). With ``want_object`` the value must be an
    object (a dict), as every configuration file we read holds.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
        raise error(f"{path!r} is not valid JSON ({problem}; it must be UTF-8 JSON); fix it, or re-create it with save_pretrained().") from exc
    if want_object and not isinstance(value, dict):
        raise error(f"{path!r} must hold a JSON object, got {type(value).__name__}; fix it, or re-create it with save_pretrained().")
    return value
