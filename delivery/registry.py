"""The one place that turns a target spec into hand-off targets.

Spec: comma-separated target kinds, each with an optional ``:argument``::

    files                       batch folders under <output_dir>/handoff/batches   (BatchFilesTarget)
    file_drop                   one JSON per document under <output_dir>/handoff     (FileDropTarget)
    ar_interface[:URL]          rows in RA_INTERFACE_LINES_ALL at URL (or ``engine_url``)  (ArInterfaceTarget)
    ubl                         Peppol BIS 3 UBL under <output_dir>/handoff/ubl      (UblTarget)
    webhook:URL                 signed JSON POST to URL                              (WebhookTarget)

e.g. ``"ubl,ar_interface,files,webhook:http://127.0.0.1:8080/hook"``. Targets are delivered to in the
order given; put the strictest first (``ubl`` refuses the most), so a document refused by one is
not already in the others. Secrets (the webhook's HMAC key) are read here, when the run starts,
from the environment variable named in the settings, and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field, SecretStr

from connectors.targets import FileDropTarget, HandoffTarget
from delivery.ar_interface import ArInterfaceSettings, ArInterfaceTarget
from delivery.batch_files import BatchFilesTarget
from delivery.ubl import SAMPLE_SELLERS, SellerParty, UblSettings, UblTarget
from delivery.webhook import WebhookTarget

TARGET_KINDS = ("files", "file_drop", "ar_interface", "ubl", "webhook")
_ALIASES = {"batch_files": "files", "peppol": "ubl", "ubl_peppol": "ubl"}


class WebhookSettings(BaseModel):
    secret_env: str = Field("BILLING_WEBHOOK_SECRET", description="Environment variable holding the HMAC key.")
    timeout_seconds: float = 10.0
    max_attempts: int = Field(4, ge=1)
    backoff_seconds: float = Field(0.5, ge=0)
    max_backoff_seconds: float = Field(30.0, ge=0)
    customer_facing: bool = Field(True, description="Never send cost transfers to this receiver.")


class DeliverySettings(BaseModel):
    """Settings of every target (sample defaults: the sample company's four operating units)."""

    sellers: dict[str, SellerParty] = Field(default_factory=lambda: dict(SAMPLE_SELLERS),
                                            description="Business unit -> the legal entity on its e-invoices.")
    ar: ArInterfaceSettings = Field(default_factory=ArInterfaceSettings)
    ubl: UblSettings = Field(default_factory=UblSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    handoff_folder: str = Field("handoff", description="Folder under output_dir for file targets.")


def parse_spec(spec: str) -> list[tuple[str, str | None]]:
    """``"files,webhook:http://h/x"`` -> [("files", None), ("webhook", "http://h/x")]."""
    out = []
    for part in (p.strip() for p in (spec or "").split(",")):
        if not part:
            continue
        kind, _, arg = part.partition(":")
        kind = _ALIASES.get(kind.strip().lower(), kind.strip().lower())
        if kind not in TARGET_KINDS:
            raise ValueError(f"unknown hand-off target {kind!r} in {spec!r}; known: {', '.join(TARGET_KINDS)}")
        out.append((kind, arg.strip() or None))
    if not out:
        raise ValueError("the hand-off target spec is empty")
    return out


def build_targets(spec: str, *, output_dir: Path | str, customers: pd.DataFrame, engine_url: str | None = None,
                  settings: DeliverySettings | None = None,
                  environ: Mapping[str, str] | None = None) -> list[HandoffTarget]:
    """Targets for ``spec`` (see the module doc), in order. ``environ`` defaults to ``os.environ``."""
    settings = settings or DeliverySettings()
    env = os.environ if environ is None else environ
    base = Path(output_dir) / settings.handoff_folder
    targets: list[HandoffTarget] = []
    for kind, arg in parse_spec(spec):
        if kind == "files":
            targets.append(BatchFilesTarget(base / "batches"))
        elif kind == "file_drop":
            targets.append(FileDropTarget(base))
        elif kind == "ar_interface":
            url = arg or engine_url
            if not url:
                raise ValueError("ar_interface needs a database URL: 'ar_interface:<sqlalchemy url>' or engine_url")
            targets.append(ArInterfaceTarget(url, settings.ar))
        elif kind == "ubl":
            targets.append(UblTarget(base / "ubl", customers, settings.sellers, settings.ubl))
        elif kind == "webhook":
            if not arg:
                raise ValueError("webhook needs a URL: 'webhook:https://host/path'")
            w = settings.webhook
            secret = env.get(w.secret_env)
            if not secret:
                raise ValueError(f"webhook {arg}: the environment variable {w.secret_env} (its HMAC key) is not set")
            targets.append(WebhookTarget(arg, SecretStr(secret), timeout_seconds=w.timeout_seconds,
                                         max_attempts=w.max_attempts, backoff_seconds=w.backoff_seconds,
                                         max_backoff_seconds=w.max_backoff_seconds,
                                         customer_facing=w.customer_facing))
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError(f"a target appears twice in {spec!r} ({', '.join(names)}): each name keys its hand-offs")
    return targets
