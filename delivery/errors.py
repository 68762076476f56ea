"""Errors of the hand-off targets.

Two kinds, because the hand-off loop (billing_cycle.handoff.hand_off) treats them differently:

- ``DeliveryRejected``: the target refuses *this document* for its data (a Peppol customer without an
  endpoint id, a currency the ledger does not take, an e-invoice that breaks an EN 16931 rule).
  Retrying cannot help; the loop records the message on the document, leaves it pending and goes on
  with the others. It is raised before the target writes anything.
- ``DeliveryFailed``: the target could not be reached or failed (a webhook answering 503 after every
  retry, a database down). Not the document's fault: the loop stops and the task's retry runs the
  hand-off again, which skips what is already delivered. ``transient`` says whether a retry may help.
"""

from __future__ import annotations

from connectors.targets import DeliveryRejected as _BaseDeliveryRejected


class DeliveryRejected(_BaseDeliveryRejected):
    """A target refuses one document: names the document key, the target, the field and the rule.

    A subclass of ``connectors.targets.DeliveryRejected`` (what the hand-off loop catches) that adds
    the rule broken, e.g. ``DeliveryRejected("INV-2026-10-C1-K1-EUR", "ubl_peppol", "peppol_endpoint_id",
    "Peppol customer C1 has no endpoint id", rule="PEPPOL-EN16931-R010")``.
    """

    def __init__(self, document_key: str, target: str, field: str, message: str, rule: str | None = None):
        self.rule = rule
        super().__init__(document_key, target, field, f"{message} [{rule}]" if rule else message)


class DeliveryFailed(RuntimeError):
    """The target could not take the document now (after its own retries); the hand-off stops."""

    def __init__(self, document_key: str, target: str, message: str, *, transient: bool):
        self.document_key, self.target, self.transient = document_key, target, transient
        super().__init__(f"{target} failed on {document_key}: {message}")


def retry_on_transient(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry a hand-off task unless a target failed permanently."""
    try:
        state.result()
    except DeliveryFailed as exc:
        return exc.transient
    except Exception:
        return True
    return False
