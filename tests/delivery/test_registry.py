"""The target spec: one place builds every target, reads secrets from the environment, refuses mistakes."""

import pytest

from connectors.targets import FileDropTarget
from delivery.ar_interface import ArInterfaceTarget
from delivery.batch_files import BatchFilesTarget
from delivery.errors import DeliveryFailed, retry_on_transient
from delivery.registry import DeliverySettings, WebhookSettings, build_targets, parse_spec
from delivery.ubl import UblTarget
from delivery.webhook import WebhookTarget
from tests.delivery.samples import customers

ENV = {"BILLING_WEBHOOK_SECRET": "top-secret-value"}


def test_a_spec_builds_each_target_in_order_with_its_folder(tmp_path):
    targets = build_targets("ubl, ar_interface, files, file_drop, webhook:http://127.0.0.1:8080/hook",
                            output_dir=tmp_path, customers=customers(),
                            engine_url=f"sqlite:///{tmp_path / 'ar.db'}", environ=ENV)
    assert [type(t) for t in targets] == [UblTarget, ArInterfaceTarget, BatchFilesTarget, FileDropTarget,
                                          WebhookTarget]
    assert [t.name for t in targets] == ["ubl_peppol", "ar_interface", "batch_files", "file_drop", "webhook"]
    assert targets[0].folder == tmp_path / "handoff" / "ubl"
    assert targets[2].folder == tmp_path / "handoff" / "batches"
    assert targets[3].folder == tmp_path / "handoff"
    assert targets[4].url == "http://127.0.0.1:8080/hook"
    assert "top-secret-value" not in repr(targets[4]) and "top-secret-value" not in repr(targets[4].__dict__)


def test_an_ar_url_can_ride_in_the_spec(tmp_path):
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    (target,) = build_targets(f"ar_interface:{url}", output_dir=tmp_path, customers=customers(), environ={})
    assert str(target.engine.url) == url


def test_parse_spec_accepts_aliases_and_keeps_arguments_whole():
    assert parse_spec("batch_files, peppol ,webhook:https://h.example:8443/a") == [
        ("files", None), ("ubl", None), ("webhook", "https://h.example:8443/a")]


@pytest.mark.parametrize(("spec", "env", "message"), [
    ("files,ftp", {}, "unknown hand-off target 'ftp'"),
    ("", {}, "empty"),
    ("webhook", ENV, "needs a URL"),
    ("webhook:http://127.0.0.1:9/x", {}, "BILLING_WEBHOOK_SECRET"),
    ("ar_interface", {}, "needs a database URL"),
    ("files,batch_files", {}, "appears twice"),
])
def test_a_bad_spec_is_refused_with_the_reason(tmp_path, spec, env, message):
    with pytest.raises(ValueError, match=message):
        build_targets(spec, output_dir=tmp_path, customers=customers(), environ=env)


def test_the_secret_variable_is_named_in_the_settings(tmp_path):
    settings = DeliverySettings(webhook=WebhookSettings(secret_env="ERP_HOOK_KEY", max_attempts=2))
    (hook,) = build_targets("webhook:http://127.0.0.1:9/x", output_dir=tmp_path, customers=customers(),
                            settings=settings, environ={"ERP_HOOK_KEY": "k"})
    assert hook.max_attempts == 2


class _State:
    def __init__(self, exc):
        self.exc = exc

    def result(self):
        raise self.exc


def test_the_task_retry_condition_retries_only_transient_failures():
    assert retry_on_transient(None, None, _State(DeliveryFailed("D", "webhook", "503", transient=True)))
    assert not retry_on_transient(None, None, _State(DeliveryFailed("D", "webhook", "401", transient=False)))
    assert retry_on_transient(None, None, _State(ConnectionError("reset")))
