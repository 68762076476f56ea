"""Who must approve what, and who may approve."""

import pandas as pd
import pytest

from billing.approvals import SegregationOfDutiesError, approval_reasons, check_segregation, customers_of_rows


def _docs():
    return pd.DataFrame([
        # key, type, customer, currency, gross cents
        ("INV-1", "invoice", "C1", "EUR", 1_000_000),     # exactly EUR 10,000.00: at the threshold
        ("INV-2", "invoice", "C1", "EUR", 999_999),       # one cent under
        ("INV-3", "invoice", "C2", "USD", 1_500_000),     # USD has its own threshold (20,000)
        ("CM-1", "credit_memo", "C3", "EUR", -100),       # every credit memo, however small
        ("INV-4", "invoice", "C4", "GBP", 50),            # small, but its customer had a data warning
        ("CT-1", "cost_transfer", "C4", "GBP", 0),        # no receivable: never waits
    ], columns=["document_key", "document_type", "customer_id", "currency", "gross_cents"])


def test_threshold_credit_memos_and_data_warnings_need_approval():
    reasons = approval_reasons(_docs(), {"EUR": 1_000_000, "USD": 2_000_000, "*": 1_000_000}, {"C4"})
    assert reasons.to_dict() == {
        "INV-1": "over_threshold", "INV-2": "", "INV-3": "", "CM-1": "credit_memo",
        "INV-4": "data_quality_warning", "CT-1": "",
    }


def test_one_threshold_for_all_currencies_and_none_for_no_threshold():
    assert approval_reasons(_docs(), 1_000_000)["INV-3"] == "over_threshold"
    assert approval_reasons(_docs(), None)["INV-1"] == ""


def test_reasons_accumulate():
    docs = _docs()
    docs.loc[0, "customer_id"] = "C4"
    assert approval_reasons(docs, 1_000_000, {"C4"})["INV-1"] == "over_threshold, data_quality_warning"


@pytest.mark.parametrize("approver", ["Maria Petrova", " maria  PETROVA ", "MARIA PETROVA"])
def test_preparer_cannot_approve_own_run(approver):
    with pytest.raises(SegregationOfDutiesError, match="self-approval refused"):
        check_segregation("Maria Petrova", approver)


def test_approval_needs_a_name():
    with pytest.raises(SegregationOfDutiesError, match="approver's name"):
        check_segregation("maria", "   ")


def test_another_person_may_approve_and_is_recorded_as_typed():
    assert check_segregation("maria", "  Ivan   Georgiev ") == "Ivan Georgiev"


def test_flagged_rows_are_traced_to_their_customers():
    data = {
        "contracts": pd.DataFrame({"contract_id": ["K1", "K2"], "customer_id": ["C1", "C2"]}),
        "projects": pd.DataFrame({"project_id": ["P1", "P2"], "contract_id": ["K1", "K2"]}),
        "scope_lines": pd.DataFrame({"scope_line_id": ["S2"], "contract_id": ["K2"]}),
    }
    flagged = {
        "expenditure_items": pd.DataFrame({"item_id": ["I1"], "project_id": ["P1"]}),
        "milestones": pd.DataFrame({"milestone_id": ["M1"], "scope_line_id": ["S2"]}),
        "customers": pd.DataFrame({"customer_id": ["C9"]}),
        "rate_card": pd.DataFrame({"contract_id": ["K-UNKNOWN"]}),  # no customer: not guessed
    }
    assert customers_of_rows(flagged, data) == {"C1", "C2", "C9"}
