"""Secrets at rest: Fernet (AES-128-CBC + HMAC) from ``cryptography``.

The key comes from ``SLUICE_SECRET_KEY`` (any string; hashed to a Fernet key) or from the
key file ``sluice.key`` (mode 0600) beside a SQLite database, or in the working directory
with PostgreSQL, created on first use with a warning.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from sluice import jsonutil
from sluice.errors import ConfigurationError
from sluice.storage.db import sqlite_path

log = logging.getLogger("sluice")

MASK = "********"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cipher: Any = None

    @property
    def _fernet(self) -> Any:
        # Imported on first use: a process with no secrets to read never loads it.
        if self._cipher is None:
            from cryptography.fernet import Fernet

            self._cipher = Fernet(self._key)
        return self._cipher

    def derive(self, label: str) -> str:
        """A key for another purpose (session cookies), derived so it never equals this one."""
        return hashlib.sha256(label.encode() + b"\0" + self._key).hexdigest()

    @classmethod
    def from_passphrase(cls, passphrase: str) -> SecretBox:
        digest = hashlib.sha256(passphrase.encode()).digest()
        return cls(base64.urlsafe_b64encode(digest))

    def encrypt(self, values: dict[str, Any]) -> bytes | None:
        if not values:
            return None
        token: bytes = self._fernet.encrypt(jsonutil.dumpb(values))
        return token

    def decrypt(self, token: bytes | None) -> dict[str, Any]:
        if not token:
            return {}
        from cryptography.fernet import InvalidToken

        try:
            data = jsonutil.loads(self._fernet.decrypt(bytes(token)))
        except InvalidToken as exc:
            raise ConfigurationError(
                "cannot decrypt stored secrets: SLUICE_SECRET_KEY or sluice.key differs "
                "from the key they were written with"
            ) from exc
        return dict(data)


def key_file_for(database_url: str) -> Path:
    path = sqlite_path(database_url)
    folder = path.parent if path is not None else Path.cwd()
    return folder / "sluice.key"


def load_secret_box(secret_key: str | None, database_url: str) -> SecretBox:
    if secret_key:
        return SecretBox.from_passphrase(secret_key)
    key_file = key_file_for(database_url)
    if key_file.exists():
        return SecretBox(key_file.read_bytes().strip())
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return SecretBox(key_file.read_bytes().strip())
    except OSError as exc:
        raise ConfigurationError(f"cannot create the key file {key_file}: {exc}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    log.warning(
        "created the secret key file %s; keep it safe (every process sharing this "
        "database needs it), or set SLUICE_SECRET_KEY",
        key_file,
    )
    return SecretBox(key)
