"""Webhook: a signed JSON POST per document to a real local receiver; retries on 5xx, never on 4xx."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from delivery.errors import DeliveryFailed, DeliveryRejected
from delivery.webhook import WebhookTarget, sign, verify_signature
from tests.delivery.samples import INV, invoice, invoice_lines

SECRET = "s3cr3t-hmac-key"
IKEY = "9" * 64


class Receiver(ThreadingHTTPServer):
    """A downstream system: checks the signature, answers scripted statuses, dedupes by Idempotency-Key."""

    def __init__(self, script=()):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)       # statuses to answer first, one per request
        self.calls = []                  # (status answered, headers, body) per request
        self.stored = {}                 # idempotency key -> (reference, payload)
        self.lock = threading.Lock()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/invoices"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        srv: Receiver = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with srv.lock:
            if not verify_signature(SECRET, body, self.headers.get("X-Signature-SHA256")):
                status, answer = 401, {"error": "bad signature"}
            elif srv.script:
                status = srv.script.pop(0)
                answer = {"error": f"scripted {status}"}
            else:
                key = self.headers["Idempotency-Key"]
                if key not in srv.stored:
                    srv.stored[key] = (f"HOOK-{len(srv.stored) + 1}", json.loads(body))
                status, answer = 201, {"reference": srv.stored[key][0]}
            srv.calls.append((status, self.headers, body))   # headers: case-insensitive
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def receiver():
    servers = []

    def start(script=()):
        srv = Receiver(script)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def target_for(url, secret=SECRET, **kw):
    waits = []
    t = WebhookTarget(url, SecretStr(secret), backoff_seconds=0.01, max_backoff_seconds=0.05, timeout_seconds=5,
                      sleep=waits.append, clock=lambda: 1_793_000_000, **kw)
    return t, waits


def test_a_signed_post_is_retried_after_a_503_and_verified_by_the_receiver(receiver):
    srv = receiver(script=[503])
    target, waits = target_for(srv.url)
    assert target.deliver(invoice(), invoice_lines(), IKEY) == "HOOK-1"
    assert [c[0] for c in srv.calls] == [503, 201] and target.attempts_log == [503, 201]
    assert len(waits) == 1 and 0 < waits[0] <= 0.05
    _, headers, body = srv.calls[1]
    assert headers["X-Signature-SHA256"] == sign(SECRET, body)
    assert headers["Idempotency-Key"] == IKEY and headers["X-Webhook-Timestamp"] == "1793000000"
    payload = json.loads(body)
    assert (payload["document_key"], payload["net"], payload["tax"], payload["gross"]) == (
        INV, "3645.50", "692.65", "4338.15")
    assert payload["sent_at"] == 1_793_000_000 and len(payload["lines"]) == 3


def test_the_same_idempotency_key_gets_the_first_reference_and_one_stored_document(receiver):
    srv = receiver()
    target, _ = target_for(srv.url)
    first = target.deliver(invoice(), invoice_lines(), IKEY)
    assert target.deliver(invoice(), invoice_lines(), IKEY) == first == "HOOK-1"
    assert len(srv.stored) == 1 and len(srv.calls) == 2


def test_a_4xx_is_not_retried_and_refuses_the_document(receiver):
    srv = receiver(script=[422])
    target, waits = target_for(srv.url)
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(invoice(), invoice_lines(), IKEY)
    assert (e.value.document_key, e.value.field) == (INV, "payload") and "422" in str(e.value)
    assert len(srv.calls) == 1 and waits == []


def test_a_wrong_secret_fails_the_hand_off_without_retrying(receiver):
    srv = receiver()
    target, waits = target_for(srv.url, secret="not-the-secret")
    with pytest.raises(DeliveryFailed) as e:
        target.deliver(invoice(), invoice_lines(), IKEY)
    assert e.value.transient is False and "401" in str(e.value)
    assert len(srv.calls) == 1 and waits == [] and srv.stored == {}
    assert "not-the-secret" not in str(e.value) and "not-the-secret" not in repr(target)


def test_a_receiver_that_keeps_failing_is_a_transient_failure_after_every_attempt(receiver):
    srv = receiver(script=[500, 502, 503])
    target, waits = target_for(srv.url, max_attempts=3)
    with pytest.raises(DeliveryFailed) as e:
        target.deliver(invoice(), invoice_lines(), IKEY)
    assert e.value.transient is True and "after 3 attempts" in str(e.value)
    assert [c[0] for c in srv.calls] == [500, 502, 503] and len(waits) == 2


def test_an_unreachable_receiver_is_retried_then_fails_transient():
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target, waits = target_for(f"http://127.0.0.1:{port}/hook", max_attempts=2)
    with pytest.raises(DeliveryFailed) as e:
        target.deliver(invoice(), invoice_lines(), IKEY)
    assert e.value.transient is True and len(target.attempts_log) == 2 and len(waits) == 1


def test_cost_transfers_stay_off_a_customer_facing_receiver(receiver):
    srv = receiver()
    ct = invoice(document_type="cost_transfer", document_key="CT-2026-10-I1")
    outside, _ = target_for(srv.url)
    assert outside.deliver(ct, invoice_lines("CT-2026-10-I1"), IKEY).startswith("skipped: cost_transfer")
    assert srv.calls == []
