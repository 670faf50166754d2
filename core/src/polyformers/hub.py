"""Finding checkpoint files: in a local directory, or in a hub repo through ``huggingface_hub``.

One function, :func:`resolve_file`, serves configs, weights, tokenizers and processors alike.
``huggingface_hub`` is imported only when a repo id (not a directory) is given, and it only
reaches the network when neither ``local_files_only=True`` nor ``HF_HUB_OFFLINE=1`` is set.
"""

from __future__ import annotations

import os
from typing import Any

HUB_KWARGS = (
    "cache_dir",
    "revision",
    "local_files_only",
    "token",
    "force_download",
    "subfolder",
    "proxies",
)


def pop_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the keyword arguments that :func:`resolve_file` understands."""
    hub = {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}
    if "use_auth_token" in kwargs:  # the v4 spelling of ``token``
        hub.setdefault("token", kwargs.pop("use_auth_token"))
    return hub


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def resolve_file(
    path_or_repo_id: str | os.PathLike,
    filename: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    subfolder: str = "",
    proxies: dict | None = None,
) -> str | None:
    """Return the local path of ``filename`` in a directory or hub repo, or ``None`` if it has none.

    A directory is used as is. Anything else is a hub repo id, looked up in the hub cache (laid out
    by ``huggingface_hub``) and, unless offline, downloaded into it.

    Raises:
        OSError: the repo id does not exist, or cannot be reached and is not cached.
    """
    path = os.fspath(path_or_repo_id)
    if os.path.isdir(path):
        candidate = os.path.join(path, subfolder, filename)
        return candidate if os.path.isfile(candidate) else None
    if os.path.isfile(path):
        raise OSError(
            f"{path!r} is a file, but a directory or hub repo id was expected: pass the directory "
            f"that holds {filename!r} (and config.json), not the file itself."
        )

    from huggingface_hub import hf_hub_download
    from huggingface_hub import errors as hub_errors

    offline = local_files_only or is_offline()
    try:
        if offline:
            # Read the cache directly: hf_hub_download(local_files_only=True) may still reach the
            # network (huggingface_hub reads HF_HUB_OFFLINE once, at import).
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(path, f"{subfolder}/{filename}" if subfolder else filename, cache_dir=cache_dir, revision=revision)
            return cached if isinstance(cached, str) else None
        return hf_hub_download(
            path,
            filename,
            subfolder=subfolder or None,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=offline,
            token=token,
            force_download=force_download,
            proxies=proxies,
        )
    except hub_errors.EntryNotFoundError:
        return None  # the repo exists but has no such file: the caller tries the next format
    except hub_errors.RevisionNotFoundError as exc:
        raise OSError(
            f"Revision {revision!r} of {path!r} does not exist; pass an existing branch, tag or "
            f"commit hash as revision=."
        ) from exc
    except hub_errors.RepositoryNotFoundError as exc:
        raise OSError(
            f"{path!r} is neither a local directory nor a repo on the hub. Check the spelling, or "
            f"pass the path of a directory written by save_pretrained."
        ) from exc
    except hub_errors.LocalEntryNotFoundError:
        # Offline (or unreachable) and this file is not in the cache. The file may simply not be
        # part of the repo, so report it as absent; callers raise when a needed file is absent.
        return None
    except ValueError as exc:  # huggingface_hub validates repo ids with ValueError subclasses
        raise OSError(
            f"{path!r} is not a local directory, and not a valid hub repo id ({exc}). Pass the "
            f"path of a directory written by save_pretrained, or a repo id like 'org/name'."
        ) from exc


def missing_file_error(path_or_repo_id: str | os.PathLike, wanted: str, **hub_kwargs: Any) -> OSError:
    """The error for a needed file that :func:`resolve_file` did not find."""
    path = os.fspath(path_or_repo_id)
    where = f"directory {path!r}" if os.path.isdir(path) else f"hub repo {path!r}"
    hint = ""
    if not os.path.isdir(path) and (hub_kwargs.get("local_files_only") or is_offline()):
        hint = (
            " Running offline (local_files_only=True or HF_HUB_OFFLINE=1), and it is not in the "
            "local cache: download it once while online, or pass a local directory."
        )
    return OSError(f"{where} has no {wanted}.{hint}")
