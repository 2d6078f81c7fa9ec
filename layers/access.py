"""Who is asking: roles, API keys, and what each role may read.

pygeoapi has no access control by design. The shell authenticates each request
(``Authorization: Bearer <key>`` or ``X-API-Key``) with :func:`authenticate` and
passes the :class:`Principal` to every call that reads or writes on its behalf; this
module says which layers and fields a principal may see. Keys come from a YAML
file (the ``TIANYA_KEYS`` setting, see ``keys.example.yml``); the file is read again
whenever its modification time, size or inode changes (one ``stat`` a request), so
a key removed from it stops working at once, without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from dataclasses import dataclass

import yaml

from layers.catalogue import Layer
from layers.errors import Forbidden, InvalidParameter, NotAuthenticated, choices

ROLES = ("public", "reporter", "dispatcher", "department", "leadership", "admin")
#: Roles that may see sensitive (personal) fields and non-public layers. ``leadership``
#: (the district's leaders) issues and accepts key tasks (:mod:`layers.key_tasks`).
TRUSTED = ("dispatcher", "department", "leadership", "admin")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (or the anonymous public)."""

    name: str
    role: str
    department: str | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise InvalidParameter(choices(self.role, ROLES, "role"))

    @property
    def trusted(self) -> bool:
        return self.role in TRUSTED


PUBLIC = Principal("anonymous", "public")


def can_read(layer: Layer, who: Principal) -> bool:
    """Whether ``who`` may read ``layer`` at all."""
    return layer.public or who.trusted


def require_read(layer: Layer, who: Principal) -> None:
    """Raise 401 (anonymous) or 403 (wrong role) if ``who`` may not read ``layer``."""
    if can_read(layer, who):
        return
    if who.role == "public":
        raise NotAuthenticated(
            f"collection {layer.id!r} holds personal data: send an API key "
            "with a dispatcher, department or admin role"
        )
    raise Forbidden(f"role {who.role!r} may not read {layer.id!r}")


def visible_fields(layer: Layer, who: Principal) -> tuple[str, ...]:
    """The fields ``who`` may see: all for trusted roles, the non-sensitive ones otherwise."""
    return tuple(f.name for f in layer.fields) if who.trusted else layer.public_fields


#: The public subset of key tasks (issue 15) is field-level, as for cases: every task and
#: milestone is public (the center publishes the supervision results weekly) without their
#: sensitive fields (:func:`visible_fields`: responsible person and phone, evidence links,
#: who reported); the audit trail (``key_task_history``) is read by trusted roles only
#: (:func:`layers.key_tasks.history`).
KEY_TASK_HISTORY_ROLES = ("dispatcher", "department", "leadership", "admin")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


#: The keys file last read: ``(path, (mtime_ns, size, inode)) -> keys``.
_KEYS_CACHE: dict[str, tuple[tuple[int, int, int], dict[str, Principal]]] = {}
_KEYS_LOCK = threading.Lock()


def _load_keys(path: str | None) -> dict[str, Principal]:
    """The keys of ``path``, read again when the file's mtime, size or inode changed."""
    if not path:
        return {}
    try:
        st = os.stat(path)
    except FileNotFoundError:  # removed: no key is valid any more
        return {}
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _KEYS_CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    with _KEYS_LOCK:
        keys = _read_keys(path)
        _KEYS_CACHE.clear()  # one keys file in use
        _KEYS_CACHE[path] = (stamp, keys)
    return keys


def _read_keys(path: str) -> dict[str, Principal]:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    out = {}
    for entry in doc.get("keys", []):
        digest = entry.get("sha256") or _digest(str(entry["key"]))
        out[digest] = Principal(
            entry.get("name", entry["role"]), entry["role"], entry.get("department")
        )
    return out


def authenticate(token: str | None, keys_file: str | None) -> Principal:
    """The principal for an API key; the public for none; 401 for an unknown key.

    Parameters
    ----------
    token : str or None
        The key the caller sent.
    keys_file : str or None
        The YAML file of keys (none: every key is unknown).
    """
    if not token:
        return PUBLIC
    keys = _load_keys(keys_file)
    digest = _digest(token)
    for known, who in keys.items():
        if hmac.compare_digest(known, digest):
            return who
    raise NotAuthenticated("unknown API key")
