"""Webhook: one signed JSON POST per document, for systems that take one.

The request::

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <the hand-off's idempotency key>
    X-Webhook-Timestamp: <unix seconds, also in the body as "sent_at">
    X-Signature-SHA256: hex(HMAC-SHA256(secret, body))

    {"idempotency_key": ..., "document_key": ..., "net": "1083.30", ..., "lines": [...], "sent_at": 1793...}

The body is ``connectors.targets.document_payload`` (the shape the file drop writes) plus ``sent_at``;
the signature covers the exact bytes sent, so the timestamp is signed too and a receiver can refuse
old replays. The receiver must treat a repeated Idempotency-Key as the same delivery and answer with
the same reference (``{"reference": ...}`` or ``{"id": ...}`` in a 2xx JSON body, else the Location
header; without either the reference is ``<url>#<idempotency key>``).

Answers: 2xx delivered. 408, 425, 429, 5xx and connection errors are retried with exponential
backoff and jitter (``Retry-After`` honoured up to the cap); after the last attempt ``DeliveryFailed``
(transient) stops the hand-off and the task's retry resumes it. 401, 403, 404 and 405 mean the target
is misconfigured: ``DeliveryFailed`` (permanent), no retry. Any other 4xx is the receiver refusing
this document: ``DeliveryRejected`` with the status and the receiver's message; the document stays
pending. The secret is a ``SecretStr`` resolved when the run starts and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pandas as pd
from pydantic import SecretStr

from billing.columns import MINOR_UNITS
from connectors.targets import document_payload
from delivery.base import check_document, skip_reason, skipped
from delivery.errors import DeliveryFailed, DeliveryRejected

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature-SHA256"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_STATUS = frozenset({408, 425, 429, *range(500, 600)})
CONFIG_STATUS = frozenset({401, 403, 404, 405})
TWO_DECIMAL_CURRENCIES = tuple(c for c, m in MINOR_UNITS.items() if m == 2)


def sign(secret: str | bytes, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, body)): what the receiver recomputes to authenticate the POST."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, signature: str) -> bool:
    """Receiver side: constant-time comparison of the signature header with the body's HMAC."""
    return hmac.compare_digest(sign(secret, body), signature or "")


class WebhookTarget:
    """POSTs each document to ``url``, signed with ``secret``; retries transient failures.

    Example: ``WebhookTarget("https://billing.example/hooks/invoices", SecretStr(os.environ["HOOK_KEY"]))``.
    ``customer_facing``: True for a receiver outside the company (a customer portal): it then never gets
    a cost transfer. ``sleep`` and ``clock`` are injectable for tests.
    """

    name = "webhook"
    channels = None

    def __init__(self, url: str, secret: SecretStr | str, *, timeout_seconds: float = 10.0, max_attempts: int = 4,
                 backoff_seconds: float = 0.5, max_backoff_seconds: float = 30.0, customer_facing: bool = True,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url {url!r} must start with http:// or https://")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.url = url
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        if not self._secret.get_secret_value():
            raise ValueError("the webhook secret is empty")
        self.timeout_seconds, self.max_attempts = timeout_seconds, max_attempts
        self.backoff_seconds, self.max_backoff_seconds = backoff_seconds, max_backoff_seconds
        self.customer_facing = customer_facing
        self._sleep, self._clock = sleep, clock
        # No proxy from the environment: hand-off receivers are addressed directly.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.attempts_log: list[int | str] = []   # status (or error name) of each attempt of the last delivery

    def __repr__(self) -> str:
        return f"WebhookTarget(url={self.url!r}, secret=SecretStr('**********'))"

    def body(self, document: dict, lines: pd.DataFrame, idempotency_key: str, sent_at: int) -> bytes:
        payload = document_payload(document, lines, idempotency_key) | {"sent_at": sent_at}
        return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                          default=str).encode("utf-8")

    def check(self, document: dict, lines: pd.DataFrame) -> None:
        """Everything ``deliver`` checks before sending, without sending (a pre-flight)."""
        if skip_reason(document, customer_facing=self.customer_facing, channels=self.channels) is None:
            check_document(document, lines, self.name, TWO_DECIMAL_CURRENCIES)

    def deliver(self, document: dict, lines: pd.DataFrame, idempotency_key: str) -> str:
        if why := skip_reason(document, customer_facing=self.customer_facing, channels=self.channels):
            return skipped(why)
        doc = check_document(document, lines, self.name, TWO_DECIMAL_CURRENCIES)
        key = doc.document_key
        self.attempts_log = []
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            sent_at = int(self._clock())
            body = self.body(document, lines, idempotency_key, sent_at)
            req = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_key,
                TIMESTAMP_HEADER: str(sent_at), SIGNATURE_HEADER: sign(self._secret.get_secret_value(), body),
                "User-Agent": "billing-cycle-handoff/1"})
            retry_after = None
            try:
                with self._opener.open(req, timeout=self.timeout_seconds) as resp:
                    self.attempts_log.append(resp.status)
                    return self._reference(resp.read(), resp.headers, idempotency_key)
            except urllib.error.HTTPError as exc:
                status = exc.code
                self.attempts_log.append(status)
                text = _snippet(exc)
                if status in CONFIG_STATUS:
                    raise DeliveryFailed(key, self.name, f"HTTP {status} from {self.url}: {text} (check the URL and "
                                         "the secret)", transient=False) from None
                if status not in RETRY_STATUS:
                    raise DeliveryRejected(key, self.name, "payload", f"the receiver answered HTTP {status}: {text}",
                                           rule="webhook") from None
                last_error = f"HTTP {status}: {text}"
                retry_after = _retry_after(exc.headers)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                self.attempts_log.append(type(reason).__name__)
                last_error = f"{type(reason).__name__}: {reason}"
            if attempt < self.max_attempts:
                delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                if retry_after is not None:
                    delay = min(self.max_backoff_seconds, max(delay, retry_after))
                log.warning("webhook %s: %s for %s, attempt %d of %d; retrying in %.2f s", self.url, last_error, key,
                            attempt, self.max_attempts, delay)
                self._sleep(delay)
        raise DeliveryFailed(key, self.name, f"{last_error} after {self.max_attempts} attempts", transient=True)

    def _reference(self, raw: bytes, headers, idempotency_key: str) -> str:
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            data = None
        if isinstance(data, dict):
            for k in ("reference", "id"):
                if data.get(k):
                    return str(data[k])
        if headers.get("Location"):
            return headers["Location"]
        return f"{self.url}#{idempotency_key}"


def _snippet(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read().decode("utf-8", "replace")
    except Exception:
        text = ""
    return " ".join(text.split())[:300] or (exc.reason or "")


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
