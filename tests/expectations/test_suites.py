"""Every expectation in the suite files, broken by one record and passed by the clean ones.

Each case below names a rule (`suite.rule`, the rule's `meta.rule` in the JSON), the severity the
close expects of it, a change that breaks it, and the record key(s) that must be caught. A test
checks every rule in the files has a case, so a new expectation cannot land untested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pytest

from billing import columns as col
from expectations.runner import load_suite_documents, validate_datasets
from tests.expectations.bundle import PERIOD, D, clean_bundle, with_row

Bundle = dict[str, pd.DataFrame]


@dataclass(frozen=True)
class Case:
    rule: str                        # suite.rule
    severity: str
    breaks: Callable[[Bundle], None]
    caught: frozenset[str]           # record keys the rule must report, and no others
    label: str = ""

    @property
    def suite(self) -> str:
        return self.rule.split(".")[0]

    @property
    def id(self) -> str:
        return self.rule + (f"-{self.label}" if self.label else "")


def add(dataset: str, like: int = 0, **values) -> Callable[[Bundle], None]:
    def change(b: Bundle) -> None:
        b[dataset] = with_row(b[dataset], like, **values)
    return change


def both(*changes: Callable[[Bundle], None]) -> Callable[[Bundle], None]:
    def change(b: Bundle) -> None:
        for c in changes:
            c(b)
    return change


def case(rule: str, severity: str, breaks: Callable[[Bundle], None], *caught: str, label: str = "") -> Case:
    return Case(rule, severity, breaks, frozenset(caught), label)


C, W, INFO = "critical", "warning", "info"
# A new item EI90 by a person with nothing else booked that day, copied from a clean labor item on K1
# (row 0) or a clean expense (row 1): only the field a case changes can break a rule.
LABOR = EXPENSE = dict(item_id="EI90", person_id="E9", expenditure_date=D("2026-10-20"))

CASES = [
    # customers
    case("customers.customer_id_present", C, add("customers", customer_id=None), ""),
    case("customers.customer_id_unique", C, add("customers", 0), "C1"),
    case("customers.currency_iso4217", C, add("customers", customer_id="C9", currency="XYZ"), "C9"),
    case("customers.delivery_channel_known", C, add("customers", customer_id="C9", delivery_channel="fax"), "C9"),
    case("customers.po_on_file_when_required", INFO,
         add("customers", customer_id="C9", po_required=True, po_number=None), "C9"),
    # contracts
    case("contracts.contract_id_present", C, add("contracts", contract_id=None), ""),
    case("contracts.contract_id_unique", C, add("contracts", 1), "K2"),
    case("contracts.customer_exists", C, add("contracts", contract_id="K9", customer_id="C404"), "K9"),
    case("contracts.currency_iso4217", C, add("contracts", contract_id="K9", currency="XYZ"), "K9"),
    case("contracts.term_start_on_or_before_end", C,
         add("contracts", contract_id="K9", start_date=D("2026-12-01"), end_date=D("2026-11-30")), "K9"),
    # scope lines
    case("scope_lines.scope_line_id_present", C, add("scope_lines", scope_line_id=None), ""),
    case("scope_lines.scope_line_id_unique", C, add("scope_lines", 0), "K1-L1"),
    case("scope_lines.contract_exists", C, add("scope_lines", scope_line_id="K9-L1", contract_id="K9"), "K9-L1"),
    case("scope_lines.billing_type_known", C, add("scope_lines", scope_line_id="K1-L2", billing_type="barter"),
         "K1-L2"),
    case("scope_lines.term_start_on_or_before_end", C,
         add("scope_lines", scope_line_id="K1-L2", start_date=D("2026-12-01"), end_date=D("2026-11-30")),
         "K1-L2"),
    # rate card
    case("rate_card.contract_id_present", C, add("rate_card", contract_id=None), "|Consultant|2026-01-01"),
    case("rate_card.role_present", C, add("rate_card", role=None), "K1||2026-01-01"),
    case("rate_card.effective_from_present", C, add("rate_card", role="Analyst", effective_from=None),
         "K1|Analyst|"),
    case("rate_card.rate_key_unique", C, add("rate_card", 0, bill_rate_cents=13_000), "K1|Consultant|2026-01-01"),
    case("rate_card.contract_exists", C, add("rate_card", contract_id="K9"), "K9|Consultant|2026-01-01"),
    case("rate_card.bill_rate_above_zero", C, add("rate_card", role="Analyst", bill_rate_cents=0),
         "K1|Analyst|2026-01-01"),
    case("rate_card.effective_from_on_or_before_to", C,
         add("rate_card", role="Analyst", effective_from=D("2026-06-01"), effective_to=D("2026-05-31")),
         "K1|Analyst|2026-06-01"),
    # projects
    case("projects.project_id_present", C, add("projects", project_id=None), ""),
    case("projects.project_id_unique", C, add("projects", 0), "P1"),
    case("projects.contract_exists", C, add("projects", project_id="P9", contract_id="K9"), "P9"),
    # expenditure items (row 0 is labor, row 1 an expense)
    case("expenditure_items.item_id_present", C, add("expenditure_items", 1, **{**EXPENSE, "item_id": None}), ""),
    case("expenditure_items.item_id_unique", C, add("expenditure_items", 1, person_id="E9"), "EI02"),
    case("expenditure_items.project_exists", W, add("expenditure_items", 1, **EXPENSE, project_id="P404"), "EI90"),
    case("expenditure_items.project_exists_rate", C,
         add("expenditure_items", 1, **EXPENSE, project_id="P404"), "EI90"),
    case("expenditure_items.expenditure_type_known", W,
         add("expenditure_items", 1, **EXPENSE, expenditure_type="gifts"), "EI90"),
    case("expenditure_items.labor_hours_in_range", W, add("expenditure_items", 0, **LABOR, quantity_milli=24_250),
         "EI90", label="over-24h"),
    case("expenditure_items.labor_hours_in_range", W, add("expenditure_items", 0, **LABOR, quantity_milli=0),
         "EI90", label="zero"),
    case("expenditure_items.labor_hours_in_range", W,
         add("expenditure_items", 4, **LABOR, quantity_milli=-25_000), "EI90", label="reversal-over-24h"),
    case("expenditure_items.labor_hours_in_range_rate", C,
         add("expenditure_items", 0, **LABOR, quantity_milli=30_000), "EI90"),
    # E1 already booked 8 h on 2026-10-05 (EI01): 16.25 h more makes 24.25 h; the whole day is quarantined.
    case("expenditure_items.person_day_hours_at_most_24", W,
         add("expenditure_items", 0, item_id="EI90", quantity_milli=16_250), "EI01", "EI90"),
    case("expenditure_items.cost_non_negative_unless_reversal", W,
         add("expenditure_items", 1, **EXPENSE, raw_cost_cents=-500), "EI90"),
    case("expenditure_items.dated_on_or_before_period_end", W,
         add("expenditure_items", 0, **{**LABOR, "expenditure_date": D("2026-11-01")}), "EI90"),
    # Analyst has no rate on K1 (T&M); EI04 is an Analyst on K2 (milestones) and passes.
    case("expenditure_items.bill_rate_on_file", INFO, add("expenditure_items", 0, **LABOR, role="Analyst"), "EI90"),
    # EI99 repeats EI01 (same person, date, project, type, quantity): only the later id is caught.
    case("expenditure_items.not_a_repeat_entry", W, add("expenditure_items", 0, item_id="EI99"), "EI99"),
    case("expenditure_items.not_a_repeat_entry_rate", C, add("expenditure_items", 0, item_id="EI99"), "EI99"),
    # milestones
    case("milestones.milestone_id_present", C, add("milestones", milestone_id=None), ""),
    case("milestones.milestone_id_unique", C, add("milestones", 0), "K2-L1-M1"),
    case("milestones.scope_line_exists", C, add("milestones", milestone_id="K9-L1-M1", scope_line_id="K9-L1"),
         "K9-L1-M1"),
    case("milestones.amount_above_zero", C, add("milestones", milestone_id="K2-L1-M2", amount_cents=0),
         "K2-L1-M2"),
    # prior invoice lines
    case("prior_invoice_lines.invoice_id_present", C, add("prior_invoice_lines", invoice_id=None, line_no=2),
         "|2"),
    case("prior_invoice_lines.invoice_line_key_unique", C, add("prior_invoice_lines", 0, amount_cents=1), "INV-1|1"),
    case("prior_invoice_lines.contract_exists", W,
         add("prior_invoice_lines", invoice_id="INV-9", contract_id="K9"), "INV-9|1"),
    # tracker additions
    case("tracker_additions.addition_id_present", C, add("tracker_additions", addition_id=None), ""),
    case("tracker_additions.addition_id_unique", C, add("tracker_additions", 0), "TRK-1"),
    case("tracker_additions.contract_exists", W,
         add("tracker_additions", 1, addition_id="TRK-9", contract_id="K9"), "TRK-9"),
    case("tracker_additions.project_matches_contract", W,
         add("tracker_additions", 0, addition_id="TRK-9", project_id="P2"), "TRK-9"),
    case("tracker_additions.dated_on_or_before_period_end", W,
         add("tracker_additions", addition_id="TRK-9", service_date=D("2026-11-02")), "TRK-9"),
]


def suite_rules() -> set[str]:
    return {f"{name}.{e['meta']['rule']}" for name, doc in load_suite_documents().items()
            for e in doc["expectations"]}


def test_every_expectation_in_the_suite_files_has_a_breaking_case():
    assert suite_rules() == {c.rule for c in CASES}


def test_the_clean_close_passes_every_expectation(clean_report):
    failed = [r.describe() for r in clean_report.results if not r.success or r.unexpected_count]
    assert failed == []
    assert clean_report.quarantine.empty
    assert {f"{r.suite}.{r.rule}" for r in clean_report.results} == suite_rules()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_one_broken_record_is_caught_with_its_severity_and_key(case: Case):
    bundle = clean_bundle()
    case.breaks(bundle)
    report = validate_datasets(bundle, PERIOD, only=[case.suite])

    suite, rule = case.rule.split(".")
    [outcome] = [r for r in report.results if r.rule == rule]
    assert not outcome.success, outcome.describe()
    assert outcome.severity == case.severity
    assert (outcome in report.blocking_failures) == (case.severity == "critical")
    q = report.quarantine
    mine = q[(q["dataset"] == suite) & (q["expectation"] == rule)]
    if case.severity == "info":
        # Reported, never quarantined: the billing rules hold these lines with their own reason.
        assert mine.empty and outcome.unexpected_count == len(set(case.caught))
        return
    # Exactly the broken record(s): the clean records beside them pass the same rule.
    assert set(mine["record_key"]) == set(case.caught)
    assert set(mine["severity"]) == {case.severity}
    assert outcome.unexpected_count == len(mine)


def test_blocking_failure_error_names_suite_rule_and_counts():
    from expectations.runner import BlockingValidationError

    bundle = clean_bundle()
    bundle["contracts"] = with_row(bundle["contracts"], contract_id="K9", customer_id="C404")
    report = validate_datasets(bundle, PERIOD, only=["contracts"])
    with pytest.raises(BlockingValidationError) as err:
        report.raise_for_blocking()
    message = str(err.value)
    assert "contracts.customer_exists" in message
    assert "1 of 3 rows failed" in message
    assert err.value.failures == report.blocking_failures


def test_value_sets_in_the_suites_match_the_canonical_schema():
    expected = {("customers", "currency"): col.CURRENCIES, ("contracts", "currency"): col.CURRENCIES,
                ("customers", "delivery_channel"): col.DELIVERY_CHANNELS,
                ("scope_lines", "billing_type"): col.BILLING_TYPES,
                ("expenditure_items", "expenditure_type"): col.EXPENDITURE_TYPES}
    found = {(name, e["kwargs"]["column"]): tuple(e["kwargs"]["value_set"])
             for name, doc in load_suite_documents().items() for e in doc["expectations"]
             if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["value_set"] not in ([True], [False])}
    assert found == expected


def test_every_expectation_states_its_severity_and_rule_in_the_file():
    for name, doc in load_suite_documents().items():
        assert name in col.INPUT_DATASETS
        rules = [e["meta"]["rule"] for e in doc["expectations"]]
        assert len(rules) == len(set(rules)), name
        for e in doc["expectations"]:
            assert e.get("severity") in ("critical", "warning", "info"), (name, e["meta"]["rule"])
            assert e["meta"].get("description"), (name, e["meta"]["rule"])
            # A "mostly" threshold only makes sense on a blocking companion of a warning rule.
            if "mostly" in e["kwargs"]:
                assert e["severity"] == "critical" and e["meta"]["rule"].endswith("_rate")
