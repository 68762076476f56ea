"""Where collections' output goes: the mail server, the downstream queues and the letter archive.

This is the I/O edge of receivables (everything else in the package is pure). It lives here because
the team split gives collections this package; it belongs beside connectors/targets.py and can move
there unchanged.

- `SmtpMailer` sends through prefect-email's ``EmailServerCredentials`` (a saved block or settings
  given in the run), so the SMTP server, port, security and password are configured once in Prefect.
- `FolderQueue` is a downstream queue as a drop folder: one JSON file per request, named by its
  idempotency key and written atomically. A second delivery with the same key is a no-op that returns
  the first file, so the store's intent/completion records plus the key give exactly-once hand-off
  across a crash (see connectors/targets.py for the same contract on invoices).
"""

from __future__ import annotations

import json
import os
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


class Mailer(Protocol):
    name: str

    def send(self, message: EmailMessage) -> str:
        """Send one message; return its Message-ID."""
        ...


class SmtpMailer:
    """SMTP through prefect-email. ``SmtpMailer.from_settings("127.0.0.1", 8025)`` or
    ``SmtpMailer(EmailServerCredentials.load("collections-smtp"))``."""

    name = "smtp"

    def __init__(self, credentials):
        self.credentials = credentials

    @classmethod
    def from_settings(cls, server: str, port: int, smtp_type: str = "INSECURE", username: str | None = None,
                      password: str | None = None) -> SmtpMailer:
        from prefect_email import EmailServerCredentials

        auth = {"username": username, "password": password} if username else {}
        return cls(EmailServerCredentials(smtp_server=server, smtp_port=port, smtp_type=smtp_type, **auth))

    @classmethod
    def from_block(cls, name: str) -> SmtpMailer:
        from prefect_email import EmailServerCredentials

        return cls(EmailServerCredentials.load(name))

    def send(self, message: EmailMessage) -> str:
        with self.credentials.get_server() as server:
            server.send_message(message)
        return str(message["Message-ID"])


class FolderQueue:
    """A downstream queue as a folder: ``<folder>/<idempotency key>.json``, exactly once per key."""

    def __init__(self, folder: Path | str, name: str):
        self.folder = Path(folder)
        self.name = name

    def deliver(self, idempotency_key: str, payload: dict) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{idempotency_key}.json"
        if path.exists():
            existing = json.loads(path.read_text())
            if existing.get("idempotency_key") == idempotency_key:
                return str(path)
            raise FileExistsError(f"{path} holds another request: refusing to overwrite")
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            json.dump({"idempotency_key": idempotency_key, **payload}, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return str(path)


def write_archive(folder: Path, files: dict[str, bytes | str]) -> dict[str, str]:
    """Write a letter's files (letter.html, statement.html, ...) under `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in files.items():
        path = folder / name
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
        out[name] = str(path)
    return out
