"""Alerts to the billing team: email through an SMTP block, and a Slack-compatible webhook block.

Both channels are Prefect blocks, saved once by an administrator (``billing-cycle blocks alerts``,
or the UI's Blocks page) and named in the run's parameters or the environment:

    BILLING_ALERT_EMAIL_BLOCK=billing-smtp            # an EmailServerCredentials block (prefect-email)
    BILLING_ALERT_EMAIL_TO=billing-team@example.com   # comma-separated
    BILLING_ALERT_WEBHOOK_BLOCK=custom-webhook/billing-alerts   # <block type slug>/<name>, any
                                                      # notification block (Slack, Teams, custom)

When they fire (each from one place): a failed or crashed close (flow state hooks, a blocking
data-quality failure included), an approval not given in time (the approval step), and unbilled cost
over 90 days above a threshold (after the compute). An alert that cannot be sent is logged and never
hides what it was about: the run's own outcome stands.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from email.message import EmailMessage

from pydantic import BaseModel, Field

log = logging.getLogger("billing_cycle.alerts")


class AlertSettings(BaseModel):
    """Where alerts go. Empty fields mean that channel is off."""

    email_block: str | None = Field(None, description="Name of an EmailServerCredentials block.")
    email_to: list[str] = Field(default_factory=list, description="Who receives alert emails.")
    email_from: str = Field("billing-cycle@localhost", description="Sender address of alert emails.")
    webhook_block: str | None = Field(None, description="Notification block as '<type slug>/<name>', e.g. "
                                      "'custom-webhook/billing-alerts' or 'slack-webhook/billing'.")
    unbilled_over_90_threshold: Decimal | None = Field(
        None, description="Alert when unbilled cost older than 90 days exceeds this amount (major units, "
        "in any one currency).")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AlertSettings:
        env = os.environ if environ is None else environ
        to = [a.strip() for a in env.get("BILLING_ALERT_EMAIL_TO", "").split(",") if a.strip()]
        threshold = env.get("BILLING_ALERT_UNBILLED_90")
        return cls(email_block=env.get("BILLING_ALERT_EMAIL_BLOCK") or None, email_to=to,
                   email_from=env.get("BILLING_ALERT_EMAIL_FROM", "billing-cycle@localhost"),
                   webhook_block=env.get("BILLING_ALERT_WEBHOOK_BLOCK") or None,
                   unbilled_over_90_threshold=Decimal(threshold) if threshold else None)

    @property
    def enabled(self) -> bool:
        return bool((self.email_block and self.email_to) or self.webhook_block)


def send_alert(settings: AlertSettings, subject: str, body: str) -> dict[str, str]:
    """Send one alert on every configured channel; returns channel -> 'sent' or the error."""
    outcome: dict[str, str] = {}
    if settings.email_block and settings.email_to:
        try:
            _send_email(settings, subject, body)
            outcome["email"] = "sent"
        except Exception as exc:  # an alert must not turn into a second failure
            outcome["email"] = f"{type(exc).__name__}: {exc}"
            log.error("alert email via block %r failed: %s", settings.email_block, exc)
    if settings.webhook_block:
        try:
            _send_webhook(settings, subject, body)
            outcome["webhook"] = "sent"
        except Exception as exc:
            outcome["webhook"] = f"{type(exc).__name__}: {exc}"
            log.error("alert webhook via block %r failed: %s", settings.webhook_block, exc)
    if not outcome:
        log.info("alert not sent (no alert channel configured): %s", subject)
    return outcome


def _send_email(settings: AlertSettings, subject: str, body: str) -> None:
    from prefect_email import EmailServerCredentials

    creds = EmailServerCredentials.load(settings.email_block)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.email_from
    msg["To"] = ", ".join(settings.email_to)
    msg.set_content(body)
    server = creds.get_server()
    try:
        server.send_message(msg)
    finally:
        server.quit()


def _send_webhook(settings: AlertSettings, subject: str, body: str) -> None:
    from prefect.blocks.core import Block

    block = Block.load(settings.webhook_block)
    block.notify(body=body, subject=subject)
