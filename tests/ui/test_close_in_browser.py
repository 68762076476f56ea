"""A billing specialist runs the month-end close from the Prefect UI, in a real browser.

Two runs of the `close-on-demand` deployment, both started from its custom-run form:
- the close (period 2026-10, "Dry Run" switched off, preparer Maria Petrova): it pauses for approval;
  an approval under the preparer's own name is refused on the page; Ivan Georgiev then approves one
  document and rejects another, with a comment; the run completes with its artifacts;
- a dry run (period 2026-11, "Dry Run" switched on): it completes with its artifacts and records nothing.
A dry run records nothing, so nothing in it can wait for approval: that is why there are two runs. The
dry run starts while the close waits for approval, to keep the test short. States are read through the
API before the page is loaded (the page is what a person sees; the API says when to look); decisions
are checked in the project's store.
"""

import contextlib
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed: pip install -e '.[dev]'")

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from store import Store
from tests.ui.browser import DIALOG_VIEWPORT, VIEWPORT, Screenshots, needs_chromium

pytestmark = [pytest.mark.e2e, needs_chromium, pytest.mark.timeout(600)]

PREPARER = "Maria Petrova"
APPROVER = "Ivan Georgiev"
COMMENT = "checked against the SOW"
SOURCE = "sample:items=2000,seed=11"
ARTIFACTS = ("close-summary", "invoice-batch", "unbilled-aging")


def test_custom_run_approval_and_results_in_the_prefect_ui(prefect_stack, page: Page, shots: Screenshots,
                                                            tmp_path: Path):
    stack = prefect_stack
    deployment = stack.deployment("close-on-demand")
    out_dry, out = tmp_path / "out-dry-run", tmp_path / "out"

    # 1. Start the close from the custom-run form, as a person would: "Dry Run" switched off.
    page.goto(f"{stack.url}/v2/deployments/deployment/{deployment['id']}")
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_visible()
    settle(page)
    shots.take("deployment", page)
    run_id = start_custom_run(page, shots, "custom-run", period="2026-10", dry_run=False, output_dir=out)
    params = stack.flow_run(run_id)["parameters"]["params"]
    assert (params["period"], params["dry_run"], params["preparer"]) == ("2026-10", False, PREPARER)
    assert params["output_dir"] == str(out) and params["source"] == SOURCE

    # 2. The run pauses for approval. Meanwhile a dry run of the next month starts (checked at the end:
    #    started now, it runs while the approval is being given instead of slowing the close down).
    stack.wait_for_flow_run(run_id, paused(1), timeout=240)
    page.goto(f"{stack.url}/v2/deployments/deployment/{deployment['id']}")
    dry_id = start_custom_run(page, shots, "custom-run-dry-run", period="2026-11", dry_run=True, output_dir=out_dry)
    dry = stack.flow_run(dry_id)["parameters"]["params"]
    assert (dry["period"], dry["dry_run"], dry["output_dir"]) == ("2026-11", True, str(out_dry))

    # 3. The preparer tries to approve and is refused on the page.
    open_run_page(page, stack.url, run_id, "Paused")
    shots.take("paused", page)
    dialog = open_resume_dialog(page, stack.url, run_id, reload=False)
    expect(dialog.get_by_role("heading", name=re.compile(r"document\(s\) wait for approval"))).to_be_visible()
    expect(dialog).to_contain_text(f"Prepared by {PREPARER}")
    shots.take("approval-form", dialog)
    dialog.get_by_role("textbox", name="Approver").fill("maria petrova")  # the preparer, in other letters
    dialog.get_by_role("textbox", name="Comment (Optional)").fill("all fine")
    resume(page, dialog)

    stack.wait_for_flow_run(run_id, paused(2), timeout=120)
    dialog = open_resume_dialog(page, stack.url, run_id)
    expect(dialog).to_contain_text("Refused: self-approval refused: 'maria petrova' prepared this run")
    shots.take("self-approval-refused", dialog)

    # 4. Another person approves the first document and rejects the second.
    labels = dialog.locator("label").filter(has_text=re.compile(r"^(INV|CM)-\S+ · "))
    keys = [text.split(" · ")[0] for text in labels.all_inner_texts()]
    assert len(keys) >= 2, f"the form lists {keys}: the scenario needs two documents waiting"
    dialog.get_by_role("textbox", name="Approver").fill(APPROVER)
    dialog.get_by_role("textbox", name="Comment (Optional)").fill(COMMENT)
    choose(page, dialog, keys[0], "approve")
    choose(page, dialog, keys[1], "reject")
    shots.take("approval-filled", dialog)
    resume(page, dialog)

    # 5. The run completes; the decisions are in the store and in the run's inputs.
    stack.wait_for_flow_run(run_id, lambda run: run["state_type"] == "COMPLETED", timeout=180)
    decisions = Store(f"sqlite:///{out / 'billing.sqlite'}").approvals()
    decided = decisions[decisions["decision"].isin(["approved", "rejected"])]
    assert sorted(zip(decided["decision"], decided["document_key"], strict=True)) == [
        ("approved", keys[0]), ("rejected", keys[1])]
    assert set(decided["approver"]) == {APPROVER} and set(decided["comment"]) == {COMMENT}
    refused = decisions[decisions["decision"] == "refused"]
    assert len(refused) == len(keys) and set(refused["approver"]) == {"maria petrova"}
    documents = Store(f"sqlite:///{out / 'billing.sqlite'}").documents().set_index("document_key")
    assert documents.loc[keys[0], "status"] == "handed_off"
    assert documents.loc[keys[1], "status"] == "rejected"
    assert (out / "2026-10" / "handoff" / f"{keys[0]}.json").exists()
    assert not (out / "2026-10" / "handoff" / f"{keys[1]}.json").exists()
    inputs = stack.request("POST", f"/flow_runs/{run_id}/input/filter", {"prefix": "paused-", "limit": 20})
    answers = {i["key"]: json.loads(i["value"]) for i in inputs if i["key"].endswith("-response")}
    assert [answers[f"paused-{n}-response"]["approver"] for n in (1, 2)] == ["maria petrova", APPROVER]

    # 6. On the run page: Completed, its artifacts, and where the files went (the run's parameters).
    open_run_page(page, stack.url, run_id, "Completed")
    shots.take("completed", page)
    open_artifacts_tab(page)
    settle(page)
    shots.take("artifacts", page)
    open_artifact(page, stack, run_id, "close-summary")
    expect(page.get_by_role("heading", name="Month-end close 2026-10")).to_be_visible()
    expect(page.get_by_role("tabpanel")).to_contain_text(f"1 approved and 1 rejected by {APPROVER}")
    settle(page)
    shots.take("close-summary", page, full_page=True)
    back_to_the_run(page)
    open_artifact(page, stack, run_id, "invoice-batch")
    expect(page.get_by_role("cell", name=keys[0], exact=True)).to_be_visible()
    settle(page)
    shots.take("invoice-batch", page)
    back_to_the_run(page)
    open_artifact(page, stack, run_id, "unbilled-aging")
    expect(page.get_by_role("columnheader", name="90+", exact=True)).to_be_visible()
    settle(page)
    shots.take("unbilled-aging", page)
    back_to_the_run(page)
    page.get_by_role("tab", name="Parameters").click()
    expect(page.get_by_role("tabpanel")).to_contain_text(str(out))
    settle(page)
    shots.take("parameters", page)

    # 7. The dry run completed with its artifacts and recorded nothing.
    stack.wait_for_flow_run(dry_id, lambda run: run["state_type"] == "COMPLETED", timeout=120)
    open_run_page(page, stack.url, dry_id, "Completed")
    open_artifacts_tab(page)
    settle(page)
    shots.take("dry-run-artifacts", page)
    dry_store = Store(f"sqlite:///{out_dry / 'billing.sqlite'}")
    assert dry_store.documents().empty and dry_store.approvals().empty
    assert (out_dry / "2026-11" / "invoices.csv").exists()
    assert not (out_dry / "2026-11" / "handoff").exists()


def paused(n: int):
    """The run waits in its nth pause, with its form in place (the UI needs both for Resume)."""
    def check(run: dict) -> bool:
        details = run["state"]["state_details"]
        return (run["state_type"] == "PAUSED" and details.get("pause_key") == str(n)
                and bool(details.get("run_input_keyset")))
    return check


def field(page: Page, label: str) -> Locator:
    """A field of the custom-run form by its label (some inputs, e.g. Period's, have no accessible name)."""
    return page.locator("div:has(> fieldset)").filter(has=page.get_by_text(label, exact=True)).last


def start_custom_run(page: Page, shots: Screenshots, shot: str, *, period: str, dry_run: bool,
                     output_dir: Path) -> str:
    """From the deployment page: Run → Custom run, fill the form, Submit; returns the new run's id."""
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Custom run").click()
    expect(page).to_have_url(re.compile(r"/v2/deployments/deployment/[0-9a-f-]+/run"))
    field(page, "Period (Optional)").get_by_role("textbox").fill(period)
    page.get_by_role("textbox", name="Source (Optional)").fill(SOURCE)
    page.get_by_role("switch", name="Dry Run (Optional)").set_checked(dry_run)
    page.get_by_role("spinbutton", name="Approval Poll Seconds (Optional)").fill("2")
    page.get_by_role("textbox", name="Output Dir (Optional)").fill(str(output_dir))
    preparer = field(page, "Preparer (Optional)")
    preparer.get_by_role("tab", name="str").click()
    preparer.get_by_role("textbox").fill(PREPARER)
    shots.take(shot, page, full_page=True)
    page.get_by_role("button", name="Submit").click()
    href = page.get_by_role("link", name="View run").last.get_attribute("href")
    match = re.search(r"/runs/flow-run/([0-9a-f-]{36})", href or "")
    assert match, f"no run link in the toast: {href!r}"
    return match.group(1)


def open_resume_dialog(page: Page, url: str, run_id: str, reload: bool = True) -> Locator:
    """Run page → menu → Resume. The menu can miss Resume for a moment after the pause: load again.

    ``reload=False`` when the run page was loaded after the API reported this pause."""
    page.set_viewport_size(DIALOG_VIEWPORT)
    for attempt in range(3):
        if reload or attempt:
            page.goto(f"{url}/v2/runs/flow-run/{run_id}")
        expect(page.get_by_text("Paused").first).to_be_visible()
        page.get_by_role("main").get_by_role("button", name="Open menu").first.click()
        resume = page.get_by_role("menuitem", name="Resume")
        try:
            resume.wait_for(timeout=10_000)
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            continue
        resume.click()
        dialog = page.get_by_role("dialog", name="Resume Flow Run")
        expect(dialog.get_by_role("textbox", name="Approver")).to_be_visible()
        return dialog
    raise AssertionError("unreachable")


def resume(page: Page, dialog: Locator) -> None:
    dialog.get_by_role("button", name="Resume").click()
    expect(dialog).to_be_hidden()
    page.set_viewport_size(VIEWPORT)


def open_run_page(page: Page, url: str, run_id: str, state: str) -> None:
    page.goto(f"{url}/v2/runs/flow-run/{run_id}")
    expect(page.get_by_text(state, exact=True).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d+ Task runs?$"))).to_be_visible()
    settle(page)
    page.wait_for_timeout(1000)  # the run graph is a canvas: no element says it is drawn


def settle(page: Page) -> None:
    """Let skeleton placeholders give way to data before a screenshot (looks only: never fails the test)."""
    with contextlib.suppress(PlaywrightTimeout):
        page.locator(".animate-pulse").first.wait_for(state="detached", timeout=15_000)


def choose(page: Page, dialog: Locator, document_key: str, choice: str) -> None:
    select = dialog.get_by_role("button", name=re.compile(rf"^Select {re.escape(document_key)} · "))
    select.click()
    page.get_by_role("option", name=choice, exact=True).click()
    expect(select).to_have_text(choice)


def back_to_the_run(page: Page) -> None:
    """The browser's Back button twice: the artifact's key page, then the run's Artifacts tab."""
    page.go_back()
    page.go_back()
    expect(page).to_have_url(re.compile(r"/v2/runs/flow-run/.*tab=Artifacts"))
    open_artifacts_tab(page)


def open_artifacts_tab(page: Page) -> None:
    page.get_by_role("tab", name="Artifacts").click()
    for key in ARTIFACTS:
        expect(page.get_by_role("heading", name=key, exact=True)).to_be_visible()


def open_artifact(page: Page, stack, run_id: str, key: str) -> None:
    """From the run's Artifacts tab: the card → this run's version of it (the card opens the key, which
    all runs share)."""
    (artifact,) = stack.request("POST", "/artifacts/filter", {"artifacts": {
        "key": {"any_": [key]}, "flow_run_id": {"any_": [run_id]}}})
    page.get_by_role("link").filter(has=page.get_by_role("heading", name=key, exact=True)).click()
    page.get_by_role("link", name=artifact["id"][:8], exact=True).click()
    expect(page).to_have_url(re.compile(rf"/v2/artifacts/artifact/{artifact['id']}"))
    expect(page.get_by_role("tabpanel")).to_be_visible()
