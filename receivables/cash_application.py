"""Cash application: match what customers paid to their open items, explainably, Oracle Receivables style.

Pure: frames in, frames out (pandas, numpy, rapidfuzz); no Prefect, no I/O, no clock.

**Inputs.** Statement entries (``receivables.bank_statements.STATEMENT_ENTRIES``), open items
(``receivables.open_items.OPEN_ITEMS`` as they stand after every application already recorded — see
``open_items_after``), the payer map (``PAYER_MAP``: IBAN or name alias -> customer) and, for
idempotency and reversals, the receipts and applications recorded before.

**Scoring.** Each receipt collects points, and every point has a reason code kept on its rows:

| evidence | code | points |
|---|---|---:|
| invoice number found in the remittance text or structured document numbers | REF_INVOICE | 50 |
| structured creditor reference (ISO 11649 RF) of an open item | REF_CREDITOR | 50 |
| remittance advice (an inbound e-mail) naming the invoices for this amount | REF_ADVICE | 40 |
| amount equals the referenced items (or one open item of the payer) | AMT_EXACT | 30 |
| amount equals a combination of the payer's open items (split payment; the oldest ``max_split_items``
  items no larger than the payment are tried) | AMT_SPLIT | 25 |
| amount short of the items by no more than the bank-fee tolerance | AMT_FEE_SHORT | 20 |
| amount above the referenced items (excess stays on account) | AMT_OVER | 15 |
| amount below the referenced items by more than the tolerance (partial payment) | AMT_PARTIAL | 10 |
| payer IBAN known for the customer | PAYER_IBAN | 20 |
| payer name equal to a known name or alias of the customer | PAYER_ALIAS | 15 |
| payer name similar (rapidfuzz token-sort ratio >= cut-off) to one of the customer | PAYER_NAME | 10 |
| several items fit the amount equally well | AMT_AMBIGUOUS | -10 |
| references also point at another customer's items (ignored) | REF_OTHER_CUSTOMER | -10 |
| the IBAN belongs to another customer than the referenced items | PAYER_CONFLICT | -30 |

Score (0-100) at or above ``auto_threshold``: applied automatically; at or above
``review_threshold``: suggested for review (the money waits as UNAPP, or UNID if the payer is not
known); below: unidentified. Informational codes carry no points: AMT_NONE, PAYER_UNKNOWN,
REF_CLOSED (an item referenced is already paid), FEE_STATED (the bank reported the shortfall as its
charges), ITEM_TAKEN (an earlier receipt of the same run paid the item first: the rest goes on account),
RETURN, RETURN_UNMATCHED, MANUAL.

**Recording.** Receipts are ``AR_CASH_RECEIPTS_ALL``-shaped (``RECEIPTS``), applications
``AR_RECEIVABLE_APPLICATIONS_ALL``-shaped (``APPLICATIONS``): APP to an item, ACC on account, UNAPP
(payer known, not applied), UNID (payer unknown). Rows are append-only like Oracle's: a later
correction adds a negative UNAPP/UNID row and the APP rows, so for every receipt the applications
always sum to the receipt amount. An over-payment puts its excess on account (ACC). A fee-short
payment closes the items it can and leaves the residue (at most the tolerance) as a write-off proposal.

**Returns.** A returned payment (a debit flagged ``is_return``) is recorded as a negative receipt that
reverses the original — found by end-to-end id, else by payer IBAN and amount — with application rows
that negate the original's, so the items re-open and both receipts get status REV.

**Scale.** No all-pairs comparison: references are hash joins on normalised tokens, amount matches are
joins on (customer, currency, amount) and an as-of join for the fee tolerance, subset sums run per
receipt over at most ``max_split_items`` of the payer's oldest items, and fuzzy names are searched only
for receipts that nothing else identified.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from billing.columns import Column, Dataset
from receivables.bank_statements import creditor_reference, find_creditor_references, normalise_iban

APPLICATION_STATUSES = ("APP", "ACC", "UNAPP", "UNID")
BANDS = ("auto", "review", "unidentified")
POINTS = {
    "REF_INVOICE": 50, "REF_CREDITOR": 50, "REF_ADVICE": 40,
    "AMT_EXACT": 30, "AMT_SPLIT": 25, "AMT_FEE_SHORT": 20, "AMT_OVER": 15, "AMT_PARTIAL": 10,
    "PAYER_IBAN": 20, "PAYER_ALIAS": 15, "PAYER_NAME": 10,
    "AMT_AMBIGUOUS": -10, "REF_OTHER_CUSTOMER": -10, "PAYER_CONFLICT": -30,
}
REF_CODES = ("REF_INVOICE", "REF_CREDITOR", "REF_ADVICE")

RECEIPTS = Dataset(
    "cash_receipts", ("cash_receipt_id",),
    "Receipts of a cash-application run (AR_CASH_RECEIPTS_ALL columns first, then how they were matched).", (
        Column("cash_receipt_id", "string", "Bank reference + entry id ('BR-1:N1')."),
        Column("receipt_number", "string", "Bank reference, else the entry id."),
        Column("customer_id", "string", "Payer, once identified.", nullable=True),
        Column("currency", "string", "ISO 4217."),
        Column("amount_cents", "int64", "Amount received (negative for a returned payment)."),
        Column("receipt_date", "date", "Value date."),
        Column("status", "string", "APP, UNAPP, UNID, ACC or REV."),
        Column("statement_id", "string", "Statement the line came from."),
        Column("entry_id", "string", "Entry id on the statement."),
        Column("bank_reference", "string", "Account servicer's reference.", nullable=True),
        Column("end_to_end_id", "string", "Payer's end-to-end reference.", nullable=True),
        Column("payer_name", "string", "Name on the payment.", nullable=True),
        Column("payer_iban", "string", "IBAN the money came from.", nullable=True),
        Column("remittance_text", "string", "Remittance as received.", nullable=True),
        Column("score", "int64", "Match score 0-100."),
        Column("band", "string", "auto, review or unidentified.", allowed=BANDS),
        Column("reason_codes", "string", "Reason codes, ';'-separated."),
        Column("reverses_receipt_id", "string", "For a returned payment: the receipt it reverses.", nullable=True),
    ))

APPLICATIONS = Dataset(
    "cash_applications", ("receivable_application_id",),
    "How each receipt is applied (AR_RECEIVABLE_APPLICATIONS_ALL). Per receipt, amounts sum to the receipt.", (
        Column("receivable_application_id", "string", "Receipt id + '#' + sequence."),
        Column("cash_receipt_id", "string", "Receipt applied."),
        Column("status", "string", "APP item, ACC on account, UNAPP unapplied, UNID unidentified.",
               allowed=APPLICATION_STATUSES),
        Column("applied_payment_schedule_id", "string", "Item paid (APP only).", nullable=True),
        Column("applied_trx_number", "string", "Its transaction number (APP only).", nullable=True),
        Column("customer_id", "string", "Customer the money belongs to (null for UNID).", nullable=True),
        Column("currency", "string", "ISO 4217."),
        Column("amount_applied_cents", "int64", "Signed amount; reversals and corrections are negative rows."),
        Column("apply_date", "date", "Date of the application (receipt value date)."),
        Column("score", "int64", "Score of the match that produced the row."),
        Column("reason_codes", "string", "Reason codes, ';'-separated."),
        Column("reversal_of", "string", "Receipt whose applications this row reverses.", nullable=True),
    ))

SUGGESTIONS = Dataset(
    "cash_suggestions", ("cash_receipt_id", "payment_schedule_id"),
    "Matches proposed for review: what a specialist confirms or corrects.", (
        Column("cash_receipt_id", "string", "Receipt."),
        Column("customer_id", "string", "Suggested customer."),
        Column("payment_schedule_id", "string", "Suggested item."),
        Column("trx_number", "string", "Its transaction number."),
        Column("amount_cents", "int64", "Amount to apply to it."),
        Column("score", "int64", "Score of the suggestion."),
        Column("reason_codes", "string", "Reason codes."),
    ))

WRITE_OFF_PROPOSALS = Dataset(
    "write_off_proposals", ("write_off_id",),
    "Residues proposed for write-off (approved in a batch, handed to the ERP once).", (
        Column("write_off_id", "string", "WO-<reason>-<payment_schedule_id>[-<receipt>]."),
        Column("payment_schedule_id", "string", "Item written off."),
        Column("trx_number", "string", "Its transaction number."),
        Column("customer_id", "string", "Customer."),
        Column("business_unit", "string", "Operating unit of the item."),
        Column("currency", "string", "ISO 4217."),
        Column("amount_cents", "int64", "Amount written off (the item's remaining balance)."),
        Column("reason", "string", "bank_fee_residue or small_balance.", allowed=("bank_fee_residue", "small_balance")),
        Column("cash_receipt_id", "string", "Receipt that left the residue.", nullable=True),
    ))

PAYER_MAP = Dataset(
    "payer_map", ("kind", "value"),
    "Who pays for whom: an IBAN or a normalised name alias mapped to a customer.", (
        Column("kind", "string", "iban or name.", allowed=("iban", "name")),
        Column("value", "string", "IBAN (upper case, no spaces) or normalised name (normalise_name)."),
        Column("customer_id", "string", "Customer."),
        Column("source", "string", "master (customer data) or correction (learned from a person)."),
    ))

SKIP_REASONS = ("already_loaded", "duplicate_in_file", "not_booked", "not_a_receipt")
# Fuzzy names: compare with every known name up to this many; beyond, only with names sharing a word
# that at most this many names carry (so 'trading' or 'systems' never pull in half the customers).
BLOCK_MAX = 2000


@dataclass(frozen=True)
class MatchSettings:
    """Thresholds of the matcher; amounts in cents of the receipt's currency."""

    auto_threshold: int = 70
    review_threshold: int = 40
    fee_tolerance_cents: int = 3500       # a shortfall up to 35.00 is taken for bank charges
    name_score_cutoff: int = 88           # rapidfuzz token_sort_ratio, 0-100
    max_split_items: int = 12             # subset sums over at most this many of the payer's oldest items

    def __post_init__(self):
        if not 0 <= self.review_threshold <= self.auto_threshold <= 100:
            raise ValueError("thresholds must satisfy 0 <= review_threshold <= auto_threshold <= 100")
        if self.fee_tolerance_cents < 0:
            raise ValueError("fee_tolerance_cents must not be negative")
        if not 1 <= self.max_split_items <= 16:
            raise ValueError("max_split_items must be between 1 and 16 (2**n subsets per receipt)")


@dataclass
class CashApplicationResult:
    """What one run of cash application decided."""

    receipts: pd.DataFrame
    applications: pd.DataFrame
    suggestions: pd.DataFrame
    write_off_proposals: pd.DataFrame
    skipped: pd.DataFrame                       # entry key, reason
    reversed_receipt_ids: list[str] = field(default_factory=list)   # earlier receipts this run reversed

    def summary(self) -> dict:
        """Counts, and money per currency (amounts in different currencies are never added up)."""
        r, a, w = self.receipts, self.applications, self.write_off_proposals

        def per_ccy(df: pd.DataFrame, col: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in df.groupby("currency")[col].sum().items()}

        return {
            "receipts": len(r), "receipts_cents": per_ccy(r, "amount_cents"),
            "by_status": {s: int((r["status"] == s).sum()) for s in ("APP", "ACC", "UNAPP", "UNID", "REV")},
            "by_band": {b: int((r["band"] == b).sum()) for b in BANDS},
            "applied_cents": per_ccy(a[a["status"] == "APP"], "amount_applied_cents"),
            "on_account_cents": per_ccy(a[a["status"] == "ACC"], "amount_applied_cents"),
            "suggestions": int(self.suggestions["cash_receipt_id"].nunique()),
            "write_off_proposals": len(w), "write_off_cents": per_ccy(w, "amount_cents"),
            "skipped": {str(k): int(v) for k, v in self.skipped["reason"].value_counts().items()},
            "reversed": len(self.reversed_receipt_ids) + int((r["amount_cents"] < 0).sum()),
        }


class CashApplicationError(ValueError):
    """A correction or input that cannot be applied; names the receipt or item and the field."""


# --- normalisation ---------------------------------------------------------------------------------------
_LEGAL_FORMS = ("gmbh", "ag", "kg", "ltd", "limited", "llc", "inc", "corp", "corporation", "co", "company", "plc",
                "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "oy", "eood", "ood", "ead", "ad", "kft",
                "sro", "the", "and")
_LEGAL_RE = re.compile(r"\b(" + "|".join(_LEGAL_FORMS) + r")\b")


def normalise_name(name: str | None) -> str:
    """Payer names compared without case, punctuation or legal form: 'ACME Systems GmbH.' -> 'acme systems'."""
    if name is None or (isinstance(name, float) and name != name) or name is pd.NA:
        return ""
    text = re.sub(r"[^\w]+", " ", str(name).casefold().replace("&", " and "))
    return re.sub(r"\s+", " ", _LEGAL_RE.sub(" ", text)).strip()


def _normalise_names(names: pd.Series) -> pd.Series:
    s = names.astype("string").fillna("").str.casefold().str.replace("&", " and ", regex=False)
    s = s.str.replace(r"[^\w]+", " ", regex=True).str.replace(_LEGAL_RE.pattern, " ", regex=True)
    return s.str.replace(r"\s+", " ", regex=True).str.strip()


def normalise_reference(text: str) -> str:
    """Invoice numbers compared on letters and digits only: 'inv-2026/10.7' -> 'INV2026107'."""
    return re.sub(r"[^A-Z0-9]", "", str(text).upper())


def _normalise_refs(s: pd.Series) -> pd.Series:
    return s.astype("string").str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)


def item_creditor_reference(trx_number: str) -> str:
    """The ISO 11649 RF reference printed on an invoice.

    Its base is the invoice number's letters and digits when they fit the 21 characters RF allows, else
    the first 21 hex digits (upper case) of their SHA-1 — so long document keys get a reference too and
    a bank's RF always leads back to one item.
    """
    return creditor_reference(_rf_base(normalise_reference(trx_number)))


def _rf_base(norm: str) -> str:
    return norm if 1 <= len(norm) <= 21 else hashlib.sha1(norm.encode()).hexdigest()[:21].upper()


def payer_map_from_master(customers: pd.DataFrame, bank_accounts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The payer map known from master data: each customer's legal name and its bank accounts.

    `customers`: customer_id, customer_name. `bank_accounts`: customer_id, iban (optional).
    """
    names = pd.DataFrame({"kind": "name", "value": _normalise_names(customers["customer_name"]),
                          "customer_id": customers["customer_id"].astype("string"), "source": "master"})
    parts = [names[names["value"] != ""]]
    if bank_accounts is not None and len(bank_accounts):
        parts.append(pd.DataFrame({
            "kind": "iban", "value": bank_accounts["iban"].map(normalise_iban).astype("string"),
            "customer_id": bank_accounts["customer_id"].astype("string"), "source": "master"}))
    out = pd.concat(parts, ignore_index=True).drop_duplicates(["kind", "value"], keep="first")
    return out.reset_index(drop=True).astype("string")


# --- the run -------------------------------------------------------------------------------------------------
def apply_cash(entries: pd.DataFrame, open_items: pd.DataFrame, payer_map: pd.DataFrame,
               settings: MatchSettings | None = None, *, prior_receipts: pd.DataFrame | None = None,
               prior_applications: pd.DataFrame | None = None, hints: pd.DataFrame | None = None
               ) -> CashApplicationResult:
    """Match a statement's receipts to open items and record applications, suggestions and write-offs.

    `open_items` must be the items as they stand after every earlier application (``open_items_after``).
    `prior_receipts`/`prior_applications` are what earlier runs recorded (RECEIPTS/APPLICATIONS
    columns): a line already recorded is skipped, and a return can reverse an earlier receipt.
    `hints` (remittance advices): customer_id, currency, amount_cents, trx_numbers (space-separated).
    """
    st = settings or MatchSettings()
    prior_receipts = _or_empty(prior_receipts, RECEIPTS)
    prior_applications = _or_empty(prior_applications, APPLICATIONS)
    lines, skipped = _select_lines(entries, set(prior_receipts["cash_receipt_id"]))
    rec = lines[(lines["amount_cents"] > 0) & ~lines["is_return"]].reset_index(drop=True)
    returns = lines[(lines["amount_cents"] < 0) & lines["is_return"]].reset_index(drop=True)
    items = _prepare_items(open_items)
    m = _Matcher(rec, items, payer_map, st, hints)
    receipts, applications, suggestions, write_offs = m.run()
    receipts, applications, reversed_ids, suggestions, write_offs = _reverse_returns(
        returns, receipts, applications, suggestions, write_offs, prior_receipts, prior_applications)
    return CashApplicationResult(
        receipts=as_dataset(receipts, RECEIPTS), applications=as_dataset(applications, APPLICATIONS),
        suggestions=as_dataset(suggestions, SUGGESTIONS),
        write_off_proposals=as_dataset(write_offs, WRITE_OFF_PROPOSALS), skipped=skipped,
        reversed_receipt_ids=reversed_ids)


def _select_lines(entries: pd.DataFrame, known: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    e = entries.reset_index(drop=True).copy()
    e["cash_receipt_id"] = (e["bank_reference"].astype("string").fillna("-") + ":" + e["entry_id"].astype("string"))
    reason = pd.Series(pd.NA, index=e.index, dtype="string")
    reason[~e["booked"].astype(bool)] = "not_booked"
    not_receipt = ~(((e["amount_cents"] > 0) & ~e["is_return"]) | ((e["amount_cents"] < 0) & e["is_return"]))
    reason[reason.isna() & not_receipt] = "not_a_receipt"
    reason[reason.isna() & e["cash_receipt_id"].isin(known)] = "already_loaded"
    reason[reason.isna() & e["cash_receipt_id"].duplicated()] = "duplicate_in_file"
    skipped = pd.DataFrame({"cash_receipt_id": e.loc[reason.notna(), "cash_receipt_id"],
                            "amount_cents": e.loc[reason.notna(), "amount_cents"],
                            "reason": reason[reason.notna()]}).reset_index(drop=True)
    lines = e[reason.isna()].sort_values(["value_date", "cash_receipt_id"], kind="stable")
    return lines, skipped


def _prepare_items(open_items: pd.DataFrame) -> pd.DataFrame:
    """The columns matching needs; text as numpy object arrays (one conversion, then plain comparisons)."""
    it = open_items.reset_index(drop=True)

    def text(col: str) -> np.ndarray:
        return it[col].to_numpy(dtype=object, na_value=None)

    return pd.DataFrame({
        "payment_schedule_id": text("payment_schedule_id"), "trx_number": text("trx_number"),
        "customer_id": text("customer_id"), "business_unit": text("business_unit"), "currency": text("currency"),
        "due_date": pd.to_datetime(it["due_date"]), "remaining": it["amount_due_remaining_cents"].astype("int64"),
        "key": _normalise_refs(it["trx_number"]),
    })


class _KeyIndex:
    """Normalised transaction numbers -> item positions (several for a document with installments).

    A hash look-up per token: built once from the items, then each token costs O(1), never a scan.
    """

    def __init__(self, keys: pd.Series):
        codes, uniques = pd.factorize(keys)
        self.index = pd.Index(uniques)
        self.order = np.argsort(codes, kind="stable")
        self.counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        self.starts = np.cumsum(self.counts) - self.counts

    def lookup(self, keys) -> tuple[np.ndarray, np.ndarray]:
        """(position in `keys`, item) for every key that names items."""
        code = self.index.get_indexer(pd.Index(keys, dtype=self.index.dtype) if len(keys) else pd.Index([]))
        hit = np.flatnonzero(code >= 0)
        c = code[hit]
        n = self.counts[c]
        pos = np.repeat(hit, n)
        offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        return pos, self.order[np.repeat(self.starts[c], n) + offsets]


class _Matcher:
    """One run over the new receipts; positions (`rid`, `item`) index the receipt and item arrays.

    Text columns are held as numpy object arrays (None for missing) so comparisons are plain booleans.
    """

    def __init__(self, rec: pd.DataFrame, items: pd.DataFrame, payer_map: pd.DataFrame, st: MatchSettings,
                 hints: pd.DataFrame | None):
        self.st, self.items, self.hints, self.rec = st, items, hints, rec
        self.n = n = len(rec)
        self.ids = _obj(rec["cash_receipt_id"])
        self.amount = rec["amount_cents"].to_numpy(dtype=np.int64)
        self.currency = _obj(rec["currency"])
        self.value_date = pd.to_datetime(rec["value_date"]).to_numpy()
        self.charges = rec["charges_cents"].to_numpy(dtype=np.int64)
        self.iban = np.array([normalise_iban(v) if isinstance(v, str) else None
                              for v in _obj(rec["counterparty_iban"])], dtype=object)
        self.name_norm = _obj(_normalise_names(rec["counterparty_name"]))
        self.text = _obj((rec["remittance_text"].astype("string").fillna("") + " "
                          + rec["referenced_documents"].astype("string").fillna("")).str.strip())
        self.creditor_ref = _obj(rec["creditor_reference"])
        self.it_customer = _obj(items["customer_id"])
        self.it_currency = _obj(items["currency"])
        self.it_remaining = items["remaining"].to_numpy(dtype=np.int64)
        pm = _or_empty(payer_map, PAYER_MAP)
        kind, value, cust = _obj(pm["kind"]), _obj(pm["value"]), _obj(pm["customer_id"])
        self.iban_map = dict(zip(value[kind == "iban"], cust[kind == "iban"], strict=True))
        self.name_map = dict(zip(value[kind == "name"], cust[kind == "name"], strict=True))
        self.names_by_customer: dict[str, list[str]] = {}
        for v, c in zip(value[kind == "name"], cust[kind == "name"], strict=True):
            self.names_by_customer.setdefault(c, []).append(v)
        self.key_index = _KeyIndex(items["key"])
        self.codes: list[list[str]] = [[] for _ in range(n)]
        self.payer_strength = np.zeros(n, dtype=np.int8)   # 2 IBAN/alias, 1 similar name, 0 none

    def _add(self, code: str, mask_or_rids) -> None:
        is_mask = isinstance(mask_or_rids, np.ndarray) and mask_or_rids.dtype == np.bool_
        rids = np.flatnonzero(mask_or_rids) if is_mask else mask_or_rids
        for rid in rids:
            self.codes[int(rid)].append(code)

    # -- the steps -----------------------------------------------------------------------------------------
    def run(self):
        self.iban_customer = np.array([self.iban_map.get(v) if v else None for v in self.iban], dtype=object)
        self.alias_customer = np.array([self.name_map.get(v) if v else None for v in self.name_norm], dtype=object)
        refs = self._references()
        refs = self._choose_reference_customer(refs)
        refs = pd.concat([refs, self._advice_references(refs)], ignore_index=True)
        self.has_ref = np.zeros(self.n, dtype=bool)
        self.has_ref[refs["rid"].to_numpy(dtype=np.int64)] = True
        self.fuzzy_customer = self._fuzzy_customers()
        self._payer_codes()
        alloc_ref = self._allocate_references(refs)
        used = alloc_ref.groupby("item")["alloc"].sum() if len(alloc_ref) else pd.Series(dtype="int64")
        alloc_amt = self._match_amounts(used)
        alloc = pd.concat([alloc_ref, alloc_amt], ignore_index=True)
        return self._record(alloc)

    def _references(self) -> pd.DataFrame:
        """(rid, item, code) for every invoice number or RF reference found on a receipt."""
        text = pd.Series(self.text, dtype="str").str.upper()
        parts = []
        for pattern in (r"[^\s,;]+", r"[^\s,;/]+"):
            tok = text.str.findall(pattern).explode().dropna()
            parts.append(pd.DataFrame({"rid": tok.index.to_numpy(dtype=np.int64),
                                       "key": tok.str.replace(r"[^A-Z0-9]", "", regex=True).to_numpy(dtype=object)}))
        tokens = pd.concat(parts, ignore_index=True)
        tokens = tokens[tokens["key"].str.len() >= 4].drop_duplicates()
        pos, item = self.key_index.lookup(tokens["key"].to_numpy())
        found = pd.DataFrame({"rid": tokens["rid"].to_numpy()[pos], "item": item, "code": "REF_INVOICE"})
        out = pd.concat([found, self._creditor_references()], ignore_index=True)
        if out.empty:
            return _empty_refs()
        # An RF reference outranks an invoice number found for the same item.
        out = out.sort_values(["rid", "item", "code"]).drop_duplicates(["rid", "item"], keep="first")
        rid, item = out["rid"].to_numpy(dtype=np.int64), out["item"].to_numpy(dtype=np.int64)
        return out[self.it_currency[item] == self.currency[rid]].reset_index(drop=True)

    def _creditor_references(self) -> pd.DataFrame:
        rows = []
        for rid in range(self.n):
            refs = [self.creditor_ref[rid]] if self.creditor_ref[rid] else []
            if "RF" in self.text[rid].upper():
                refs += find_creditor_references(self.text[rid])
            rows += [(rid, ref[4:]) for ref in dict.fromkeys(refs)]
        if not rows:
            return _empty_refs()
        bases = pd.DataFrame(rows, columns=["rid", "base"])
        # Short numbers are their own RF base; long ones are hashed (item_creditor_reference), computed
        # only for the items whose numbers are long, and only when an RF reference arrived.
        pos, item = self.key_index.lookup(bases["base"].to_numpy())
        keys = self.items["key"]
        long_items = np.flatnonzero((keys.str.len() > 21).to_numpy())
        found = [pd.DataFrame({"rid": bases["rid"].to_numpy()[pos], "item": item})]
        if len(long_items):
            hashed = _KeyIndex(pd.Series([_rf_base(k) for k in keys.to_numpy()[long_items]], dtype="string"))
            hpos, hitem = hashed.lookup(bases["base"].to_numpy())
            found.append(pd.DataFrame({"rid": bases["rid"].to_numpy()[hpos], "item": long_items[hitem]}))
        out = pd.concat(found, ignore_index=True)
        out["code"] = "REF_CREDITOR"
        return out

    def _choose_reference_customer(self, refs: pd.DataFrame) -> pd.DataFrame:
        """References to several customers: keep the payer's (by IBAN) or the one owed most."""
        self.ref_customer = np.full(self.n, None, dtype=object)
        if refs.empty:
            return refs
        rid, item = refs["rid"].to_numpy(dtype=np.int64), refs["item"].to_numpy(dtype=np.int64)
        per = pd.DataFrame({"rid": rid, "customer_id": self.it_customer[item], "remaining": self.it_remaining[item]})
        per = per.groupby(["rid", "customer_id"], as_index=False)["remaining"].sum()
        per["is_payer"] = per["customer_id"].to_numpy() == self.iban_customer[per["rid"].to_numpy(dtype=np.int64)]
        per = per.sort_values(["rid", "is_payer", "remaining", "customer_id"], ascending=[True, False, False, True])
        chosen = per.drop_duplicates("rid")
        self.ref_customer[chosen["rid"].to_numpy(dtype=np.int64)] = chosen["customer_id"].to_numpy()
        several = per.groupby("rid").size()
        self._add("REF_OTHER_CUSTOMER", several[several > 1].index.to_numpy())
        keep = self.it_customer[item] == self.ref_customer[rid]
        return refs[keep].reset_index(drop=True)

    def _advice_references(self, refs: pd.DataFrame) -> pd.DataFrame:
        """Receipts without references take them from a remittance advice of the same amount."""
        if self.hints is None or self.hints.empty:
            return _empty_refs()
        no_ref = np.ones(self.n, dtype=bool)
        no_ref[refs["rid"].to_numpy(dtype=np.int64)] = False
        rids = np.flatnonzero(no_ref)
        payer = np.where(self.iban_customer[rids] != None, self.iban_customer[rids], self.alias_customer[rids])  # noqa: E711
        cand = pd.DataFrame({"rid": rids, "currency": self.currency[rids], "amount_cents": self.amount[rids],
                             "payer": payer})
        h = pd.DataFrame({"hint": np.arange(len(self.hints)), "currency": _obj(self.hints["currency"]),
                          "amount_cents": self.hints["amount_cents"].to_numpy(dtype=np.int64),
                          "customer_id": _obj(self.hints["customer_id"]),
                          "trx_numbers": _obj(self.hints["trx_numbers"])})
        m = cand.merge(h, on=["currency", "amount_cents"])
        m = m[(m["payer"].to_numpy() == None) | (m["payer"].to_numpy() == m["customer_id"].to_numpy())]  # noqa: E711
        # Each advice explains one payment: the earliest receipt takes it.
        m = m.sort_values(["hint", "rid"]).drop_duplicates("hint").drop_duplicates("rid")
        if m.empty:
            return _empty_refs()
        tok = m.assign(key=[[normalise_reference(t) for t in str(x).split()] for x in m["trx_numbers"]]).explode("key")
        tok = tok.reset_index(drop=True)
        pos, item = self.key_index.lookup(tok["key"].to_numpy())
        found = tok.iloc[pos].reset_index(drop=True)
        ok = (self.it_customer[item] == found["customer_id"].to_numpy()) & (
            self.it_currency[item] == found["currency"].to_numpy())
        found = found[ok]
        if found.empty:
            return _empty_refs()
        first = found.drop_duplicates("rid")
        self.ref_customer[first["rid"].to_numpy(dtype=np.int64)] = first["customer_id"].to_numpy()
        return pd.DataFrame({"rid": found["rid"].to_numpy(dtype=np.int64), "item": item[ok], "code": "REF_ADVICE"})

    def _fuzzy_customers(self) -> np.ndarray:
        """rapidfuzz over the known names, only for receipts nothing else identified.

        Not against every name: a name is compared with the known names that share one of its distinctive
        words (a word at most ``BLOCK_MAX`` names carry); with few names on file, with all of them.
        """
        out = np.full(self.n, None, dtype=object)
        need = (~self.has_ref & (self.iban_customer == None) & (self.alias_customer == None)  # noqa: E711
                & (self.name_norm != ""))
        if not need.any() or not self.name_map:
            return out
        from rapidfuzz import fuzz, process

        choices = list(self.name_map)
        small = len(choices) <= BLOCK_MAX
        index: dict[str, list[int]] = {}
        if not small:
            for i, name in enumerate(choices):
                for word in set(name.split()):
                    index.setdefault(word, []).append(i)
        for rid in np.flatnonzero(need):
            name = self.name_norm[rid]
            if small:
                pool = choices
            else:
                ids = {i for w in set(name.split()) if len(index.get(w, ())) <= BLOCK_MAX for i in index.get(w, ())}
                if not ids:
                    continue
                pool = [choices[i] for i in ids]
            hit = process.extractOne(name, pool, scorer=fuzz.token_sort_ratio, score_cutoff=self.st.name_score_cutoff)
            if hit is not None:
                out[rid] = self.name_map[hit[0]]
        return out

    def _payer_codes(self) -> None:
        """Payer evidence for the customer the receipt points to (reference first, else the payer's own)."""
        cust = self.ref_customer.copy()
        for other in (self.iban_customer, self.alias_customer, self.fuzzy_customer):
            cust = np.where(cust == None, other, cust)  # noqa: E711
        self.customer = cust
        known = cust != None  # noqa: E711
        by_iban = known & (self.iban_customer == cust)
        conflict = known & (self.iban_customer != None) & ~by_iban  # noqa: E711
        by_alias = known & ~by_iban & (self.alias_customer == cust)
        by_fuzzy = known & ~by_iban & ~by_alias & (self.fuzzy_customer == cust)
        confirm = known & ~by_iban & ~by_alias & ~by_fuzzy & self.has_ref & (self.name_norm != "")
        if confirm.any():
            from rapidfuzz import fuzz

            cut = self.st.name_score_cutoff
            for rid in np.flatnonzero(confirm):
                names = self.names_by_customer.get(cust[rid], ())
                confirm[rid] = any(fuzz.token_sort_ratio(self.name_norm[rid], k) >= cut for k in names)
        self._add("PAYER_IBAN", by_iban)
        self._add("PAYER_CONFLICT", conflict)
        self._add("PAYER_ALIAS", by_alias)
        self._add("PAYER_NAME", by_fuzzy | confirm)
        self._add("PAYER_UNKNOWN", ~(by_iban | conflict | by_alias | by_fuzzy | confirm))
        self.payer_strength[by_fuzzy | confirm] = 1
        self.payer_strength[by_iban | by_alias] = 2

    def _allocate_references(self, refs: pd.DataFrame) -> pd.DataFrame:
        """Spread each referenced receipt over its items: exact, fee-short, partial (oldest first) or over."""
        if refs.empty:
            return _empty_alloc()
        tol = self.st.fee_tolerance_cents
        a = refs.copy()
        idx = a["item"].to_numpy(dtype=np.int64)
        a["remaining"] = self.it_remaining[idx]
        a["due"] = self.items["due_date"].to_numpy()[idx]
        a["trx"] = _obj(self.items["trx_number"])[idx]
        first_codes: dict[int, list[str]] = {}
        for rid, code in a[["rid", "code"]].drop_duplicates().sort_values(["rid", "code"]).itertuples(index=False):
            first_codes.setdefault(rid, []).append(code)
        for rid, codes in first_codes.items():
            self.codes[rid][:0] = codes
        self._add("REF_CLOSED", a.loc[a["remaining"] == 0, "rid"].unique())
        a["credit"] = a["remaining"] < 0
        a = a.sort_values(["rid", "credit", "due", "trx", "item"], ascending=[True, False, True, True, True])
        total = a.groupby("rid")["remaining"].sum()
        credits = a.loc[a["credit"]].groupby("rid")["remaining"].sum().reindex(total.index, fill_value=0)
        amount = pd.Series(self.amount[total.index.to_numpy(dtype=np.int64)], index=total.index)
        short = total - amount
        kind = pd.Series(np.select([short == 0, (short > 0) & (short <= tol), short > tol],
                                   ["AMT_EXACT", "AMT_FEE_SHORT", "AMT_PARTIAL"], "AMT_OVER"), index=total.index)
        # Credits (credit memos the payer deducted) apply in full and add to what the payment covers.
        capacity = amount - credits
        pos = a["remaining"].clip(lower=0)
        cum = pos.groupby(a["rid"]).cumsum()
        before = cum - pos
        # Less than the items but exactly their first installments (oldest first): exact, not partial.
        prefix = (pos > 0).to_numpy() & (cum.to_numpy() == capacity.reindex(a["rid"]).to_numpy())
        kind[kind.index.isin(a.loc[prefix, "rid"]) & (kind == "AMT_PARTIAL")] = "AMT_EXACT"
        avail = capacity.reindex(a["rid"]).to_numpy() - before.to_numpy()
        a["alloc"] = np.where(a["credit"], a["remaining"], np.clip(avail, 0, pos.to_numpy()))
        a["amount_kind"] = kind.reindex(a["rid"]).to_numpy()
        for rid, k in kind.items():
            self.codes[rid].append(k)
            if k == "AMT_FEE_SHORT" and self.charges[rid] == short[rid]:
                self.codes[rid].append("FEE_STATED")
        return a[["rid", "item", "alloc", "amount_kind"]].astype({"alloc": "int64"})

    def _match_amounts(self, used: pd.Series) -> pd.DataFrame:
        """Receipts without references, payer known: one item of that amount, fee-short, or a split."""
        st = self.st
        need = ~self.has_ref & (self.customer != None)  # noqa: E711
        if not need.any():
            return _empty_alloc()
        rids = np.flatnonzero(need)
        # Only the payers' own open items take part (a few per receipt, not the whole book).
        mine = np.flatnonzero(pd.Index(self.it_customer).isin(pd.unique(self.customer[rids])))
        rem = self.it_remaining[mine] - used.reindex(mine, fill_value=0).to_numpy(dtype=np.int64)
        cand_items = pd.DataFrame({"item": mine, "customer": self.it_customer[mine],
                                   "currency": self.it_currency[mine], "rem": rem,
                                   "due": self.items["due_date"].to_numpy()[mine],
                                   "trx": _obj(self.items["trx_number"])[mine]})
        cand_items = cand_items[cand_items["rem"] > 0]
        q = pd.DataFrame({"rid": rids, "customer": self.customer[rids], "currency": self.currency[rids],
                          "amount": self.amount[rids]})
        out = []
        # 1. one item of exactly that amount (the oldest when several).
        ex = q.merge(cand_items, left_on=["customer", "currency", "amount"], right_on=["customer", "currency", "rem"])
        ex = ex.sort_values(["rid", "due", "trx", "item"])
        counts = ex.groupby("rid").size()
        ex = ex.drop_duplicates("rid")
        self._add("AMT_EXACT", ex["rid"].to_numpy())
        self._add("AMT_AMBIGUOUS", counts[counts > 1].index.to_numpy())
        out.append(pd.DataFrame({"rid": ex["rid"], "item": ex["item"], "alloc": ex["amount"],
                                 "amount_kind": "AMT_EXACT"}))
        q = q[~q["rid"].isin(ex["rid"])]
        # 2. one item a bank fee above the amount (the closest).
        if len(q) and st.fee_tolerance_cents > 0 and len(cand_items):
            fee = pd.merge_asof(q.sort_values("amount"), cand_items.sort_values("rem"), left_on="amount",
                                right_on="rem", by=["customer", "currency"], direction="forward",
                                tolerance=st.fee_tolerance_cents)
            fee = fee[fee["item"].notna()]
            self._add("AMT_FEE_SHORT", fee["rid"].to_numpy())
            out.append(pd.DataFrame({"rid": fee["rid"], "item": fee["item"].astype("int64"), "alloc": fee["amount"],
                                     "amount_kind": "AMT_FEE_SHORT"}))
            q = q[~q["rid"].isin(fee["rid"])]
        # 3. a combination of the payer's oldest open items (split payment).
        if len(q):
            out.append(self._splits(q, cand_items))
        return pd.concat(out, ignore_index=True).astype({"rid": "int64", "item": "int64", "alloc": "int64"})

    def _splits(self, q: pd.DataFrame, cand_items: pd.DataFrame) -> pd.DataFrame:
        k = self.st.max_split_items
        ci = cand_items.sort_values(["customer", "currency", "due", "trx", "item"])
        keys = (ci["customer"].astype(str) + "|" + ci["currency"].astype(str)).to_numpy()
        spans = {}
        if len(ci):
            uniq, first, count = np.unique(keys, return_index=True, return_counts=True)
            spans = {u: (int(f), int(f + c)) for u, f, c in zip(uniq, first, count, strict=True)}
        bits = ((np.arange(1 << k)[:, None] >> np.arange(k)) & 1).astype(np.int64)
        sizes = bits.sum(axis=1)
        rem_arr, item_arr = ci["rem"].to_numpy(dtype=np.int64), ci["item"].to_numpy(dtype=np.int64)
        rows = []
        for rid, cust, ccy, amount in q[["rid", "customer", "currency", "amount"]].itertuples(index=False):
            s, e = spans.get(f"{cust}|{ccy}", (0, 0))
            # Only items no larger than the payment can be part of it; the oldest of those, at most k.
            pick = s + np.flatnonzero(rem_arr[s:e] <= amount)[:k]
            n = len(pick)
            hit = np.array([], dtype=np.int64)
            if n >= 2:
                sub = bits[: 1 << n, :n]
                sums = sub @ rem_arr[pick]
                hit = np.flatnonzero((sums == amount) & (sizes[: 1 << n] >= 2))
            if not len(hit):
                self.codes[rid].append("AMT_NONE")
                continue
            best = hit[sizes[hit] == sizes[hit].min()]
            self.codes[rid].append("AMT_SPLIT")
            if len(best) > 1:
                self.codes[rid].append("AMT_AMBIGUOUS")
            # Among equally small combinations the lowest bitmask leaves out the newest items.
            chosen = pick[np.flatnonzero(sub[best.min()])]
            rows += [(rid, int(item_arr[j]), int(rem_arr[j]), "AMT_SPLIT") for j in chosen]
        return pd.DataFrame(rows, columns=["rid", "item", "alloc", "amount_kind"]) if rows else _empty_alloc()

    # -- decisions and rows --------------------------------------------------------------------------------------
    def _record(self, alloc: pd.DataFrame):
        st, n, items = self.st, self.n, self.items
        scores = np.array([max(0, min(100, sum(POINTS.get(c, 0) for c in set(codes)))) for codes in self.codes],
                          dtype=np.int64)
        has_alloc = np.zeros(n, dtype=bool)
        has_alloc[alloc["rid"].to_numpy(dtype=np.int64)] = True
        band = np.where((scores >= st.auto_threshold) & has_alloc, "auto",
                        np.where((scores >= st.review_threshold) & has_alloc, "review", "unidentified"))
        # The receipt names its customer when applied, or when an invoice reference or the payer's IBAN or
        # exact name says who paid; a similar name alone only makes a suggestion.
        keep = (band == "auto") | (self.payer_strength >= 2) | (self.ref_customer != None)  # noqa: E711
        customer = np.where(keep, self.customer, None)
        arid = alloc["rid"].to_numpy(dtype=np.int64)
        auto = self._resolve_conflicts(alloc[band[arid] == "auto"].copy())
        review = alloc[band[arid] == "review"]
        it_psid, it_trx = _obj(items["payment_schedule_id"]), _obj(items["trx_number"])
        rows_rid, rows_status, rows_psid, rows_trx, rows_amount = [], [], [], [], []
        app_auto = auto[auto["alloc"] != 0]
        rows_rid += app_auto["rid"].tolist()
        rows_status += ["APP"] * len(app_auto)
        rows_psid += it_psid[app_auto["item"].to_numpy(dtype=np.int64)].tolist()
        rows_trx += it_trx[app_auto["item"].to_numpy(dtype=np.int64)].tolist()
        rows_amount += app_auto["alloc"].tolist()
        applied = np.zeros(n, dtype=np.int64)
        np.add.at(applied, auto["rid"].to_numpy(dtype=np.int64), auto["alloc"].to_numpy(dtype=np.int64))
        rest = self.amount - applied
        acc = (band == "auto") & (rest != 0)
        waiting = band != "auto"
        for mask, status in ((acc, "ACC"), (waiting & (customer != None), "UNAPP"),  # noqa: E711
                             (waiting & (customer == None), "UNID")):  # noqa: E711
            r = np.flatnonzero(mask)
            rows_rid += r.tolist()
            rows_status += [status] * len(r)
            rows_psid += [None] * len(r)
            rows_trx += [None] * len(r)
            rows_amount += (rest[r] if status == "ACC" else self.amount[r]).tolist()
        app = pd.DataFrame({"rid": rows_rid, "status": rows_status, "psid": rows_psid, "trx": rows_trx,
                            "amount": rows_amount})
        app = app.sort_values("rid", kind="stable").reset_index(drop=True)
        seq = app.groupby("rid").cumcount().to_numpy() + 1
        r = app["rid"].to_numpy(dtype=np.int64)
        reasons = np.array([";".join(dict.fromkeys(c)) for c in self.codes], dtype=object)
        ids = self.ids
        applications = pd.DataFrame({
            "receivable_application_id": [f"{ids[i]}#{s}" for i, s in zip(r, seq, strict=True)],
            "cash_receipt_id": ids[r], "status": app["status"].to_numpy(), "applied_payment_schedule_id": app["psid"],
            "applied_trx_number": app["trx"],
            "customer_id": np.where(app["status"].to_numpy() == "UNID", None, customer[r]),
            "currency": self.currency[r], "amount_applied_cents": app["amount"].to_numpy(dtype=np.int64),
            "apply_date": self.value_date[r], "score": scores[r], "reason_codes": reasons[r], "reversal_of": None,
        })
        status = _status_from(applications)
        rec = self.rec
        receipts = pd.DataFrame({
            "cash_receipt_id": ids, "receipt_number": _obj(rec["bank_reference"].astype("string").fillna(
                rec["entry_id"].astype("string"))),
            "customer_id": customer, "currency": self.currency, "amount_cents": self.amount,
            "receipt_date": self.value_date, "status": pd.Series(ids, dtype=object).map(status).to_numpy(),
            "statement_id": _obj(rec["statement_id"]), "entry_id": _obj(rec["entry_id"]),
            "bank_reference": _obj(rec["bank_reference"]), "end_to_end_id": _obj(rec["end_to_end_id"]),
            "payer_name": _obj(rec["counterparty_name"]), "payer_iban": self.iban,
            "remittance_text": _obj(rec["remittance_text"]), "score": scores, "band": band,
            "reason_codes": reasons, "reverses_receipt_id": None,
        })
        rr, ri = review["rid"].to_numpy(dtype=np.int64), review["item"].to_numpy(dtype=np.int64)
        suggestions = pd.DataFrame({
            "cash_receipt_id": ids[rr], "customer_id": self.customer[rr], "payment_schedule_id": it_psid[ri],
            "trx_number": it_trx[ri], "amount_cents": review["alloc"].to_numpy(dtype=np.int64),
            "score": scores[rr], "reason_codes": reasons[rr],
        })
        return receipts, applications, suggestions, self._fee_residues(auto)

    def _resolve_conflicts(self, auto: pd.DataFrame) -> pd.DataFrame:
        """Two receipts of one run paying the same item: the earlier gets it, the later's money goes on account."""
        if auto.empty:
            return auto
        auto = auto.assign(order=np.arange(len(auto)), rem=self.it_remaining[auto["item"].to_numpy(dtype=np.int64)])
        auto = auto.sort_values(["item", "rid", "order"], kind="stable")
        mag = auto["alloc"].abs()
        before = mag.groupby(auto["item"]).cumsum() - mag
        allowed = np.clip(np.abs(auto["rem"].to_numpy()) - before.to_numpy(), 0, mag.to_numpy())
        self._add("ITEM_TAKEN", auto.loc[allowed < mag.to_numpy(), "rid"].unique())
        auto["alloc"] = np.sign(auto["alloc"].to_numpy()) * allowed
        return auto.sort_values(["rid", "order"], kind="stable")

    def _fee_residues(self, auto: pd.DataFrame) -> pd.DataFrame:
        if auto.empty:
            return pd.DataFrame(columns=WRITE_OFF_PROPOSALS.names)
        tol = self.st.fee_tolerance_cents
        paid = auto.groupby("item")["alloc"].sum()
        fee = auto[auto["amount_kind"] == "AMT_FEE_SHORT"].drop_duplicates("item", keep="last")
        item = fee["item"].to_numpy(dtype=np.int64)
        left = self.it_remaining[item] - paid.reindex(item).to_numpy(dtype=np.int64)
        keep = (left > 0) & (left <= tol)
        item, rid, left = item[keep], fee["rid"].to_numpy(dtype=np.int64)[keep], left[keep]
        psid = _obj(self.items["payment_schedule_id"])[item]
        return pd.DataFrame({
            "write_off_id": [f"WO-bank_fee_residue-{p}-{r}" for p, r in zip(psid, self.ids[rid], strict=True)],
            "payment_schedule_id": psid, "trx_number": _obj(self.items["trx_number"])[item],
            "customer_id": self.it_customer[item], "business_unit": _obj(self.items["business_unit"])[item],
            "currency": self.it_currency[item], "amount_cents": left, "reason": "bank_fee_residue",
            "cash_receipt_id": self.ids[rid]}, columns=WRITE_OFF_PROPOSALS.names)


def _obj(s: pd.Series) -> np.ndarray:
    """A text column as a numpy object array with None for missing values."""
    arr = s.to_numpy(dtype=object, na_value=None)
    return arr


def _empty_refs() -> pd.DataFrame:
    return pd.DataFrame({"rid": pd.Series(dtype="int64"), "item": pd.Series(dtype="int64"),
                         "code": pd.Series(dtype="object")})



def _empty_alloc() -> pd.DataFrame:
    return pd.DataFrame({"rid": pd.Series(dtype="int64"), "item": pd.Series(dtype="int64"),
                         "alloc": pd.Series(dtype="int64"), "amount_kind": pd.Series(dtype="string")})


# --- returns -----------------------------------------------------------------------------------------------------
def _reverse_returns(returns: pd.DataFrame, receipts: pd.DataFrame, applications: pd.DataFrame,
                     suggestions: pd.DataFrame, write_offs: pd.DataFrame, prior_receipts: pd.DataFrame,
                     prior_applications: pd.DataFrame):
    if returns.empty:
        return receipts, applications, [], suggestions, write_offs
    cols = ["cash_receipt_id", "customer_id", "currency", "amount_cents", "receipt_date", "end_to_end_id",
            "payer_iban", "status"]
    pool = pd.concat([prior_receipts[cols].assign(new=False), receipts[cols].assign(new=True)], ignore_index=True)
    pool = pool[(pool["amount_cents"] > 0) & (pool["status"] != "REV")].copy()
    pool["payer_iban"] = pool["payer_iban"].map(normalise_iban, na_action="ignore")
    apps_pool = pd.concat([prior_applications, applications], ignore_index=True)
    taken: set[str] = set()
    new_receipts, new_apps, reversed_prior = [], [], []
    for ret in returns.itertuples(index=False):
        amount, e2e = int(ret.amount_cents), ret.end_to_end_id
        iban = normalise_iban(ret.counterparty_iban) if pd.notna(ret.counterparty_iban) else None
        cand = pool[(pool["currency"] == ret.currency) & ~pool["cash_receipt_id"].isin(taken)]
        hit = cand[cand["end_to_end_id"] == e2e] if pd.notna(e2e) else cand.iloc[0:0]
        if hit.empty and iban:
            hit = cand[(cand["payer_iban"] == iban) & (cand["amount_cents"] == -amount)]
        hit = hit[hit["amount_cents"] == -amount].sort_values(["receipt_date", "cash_receipt_id"])
        rid = ret.cash_receipt_id
        base = {"cash_receipt_id": rid, "receipt_number": ret.bank_reference if pd.notna(ret.bank_reference)
                else ret.entry_id, "currency": ret.currency, "amount_cents": amount, "receipt_date": ret.value_date,
                "statement_id": ret.statement_id, "entry_id": ret.entry_id, "bank_reference": ret.bank_reference,
                "end_to_end_id": e2e, "payer_name": ret.counterparty_name, "payer_iban": iban,
                "remittance_text": ret.remittance_text}
        if hit.empty:
            new_receipts.append({**base, "customer_id": None, "status": "UNID", "score": 0, "band": "unidentified",
                                 "reason_codes": "RETURN_UNMATCHED", "reverses_receipt_id": None})
            new_apps.append({"receivable_application_id": f"{rid}#1", "cash_receipt_id": rid, "status": "UNID",
                             "applied_payment_schedule_id": None, "applied_trx_number": None, "customer_id": None,
                             "currency": ret.currency, "amount_applied_cents": amount, "apply_date": ret.value_date,
                             "score": 0, "reason_codes": "RETURN_UNMATCHED", "reversal_of": None})
            continue
        orig = hit.iloc[-1]
        oid = orig["cash_receipt_id"]
        taken.add(oid)
        reason = "RETURN" + (f";{ret.return_reason}" if pd.notna(ret.return_reason) else "")
        new_receipts.append({**base, "customer_id": orig["customer_id"], "status": "REV", "score": 100,
                             "band": "auto", "reason_codes": reason, "reverses_receipt_id": oid})
        net = apps_pool[apps_pool["cash_receipt_id"] == oid].fillna({"applied_payment_schedule_id": "",
                                                                     "applied_trx_number": "", "customer_id": ""})
        net = net.groupby(["status", "applied_payment_schedule_id", "applied_trx_number", "customer_id", "currency"],
                          as_index=False, sort=False)["amount_applied_cents"].sum()
        net = net[net["amount_applied_cents"] != 0]
        for seq, a in enumerate(net.itertuples(index=False), start=1):
            new_apps.append({"receivable_application_id": f"{rid}#{seq}", "cash_receipt_id": rid, "status": a.status,
                             "applied_payment_schedule_id": a.applied_payment_schedule_id or None,
                             "applied_trx_number": a.applied_trx_number or None,
                             "customer_id": a.customer_id or None, "currency": a.currency,
                             "amount_applied_cents": -int(a.amount_applied_cents), "apply_date": ret.value_date,
                             "score": 100, "reason_codes": reason, "reversal_of": oid})
        if orig["new"]:
            receipts.loc[receipts["cash_receipt_id"] == oid, "status"] = "REV"
            suggestions = suggestions[suggestions["cash_receipt_id"] != oid]
            write_offs = write_offs[write_offs["cash_receipt_id"] != oid]
        else:
            reversed_prior.append(oid)
    receipts = pd.concat([receipts, pd.DataFrame(new_receipts, columns=RECEIPTS.names)], ignore_index=True)
    applications = pd.concat([applications, pd.DataFrame(new_apps, columns=APPLICATIONS.names)], ignore_index=True)
    return receipts, applications, reversed_prior, suggestions, write_offs


# --- after the run: statuses, items, corrections -------------------------------------------------------------------
def _status_from(applications: pd.DataFrame) -> pd.Series:
    """Receipt status from the net of its applications: UNID, else UNAPP, else APP, else ACC."""
    if applications.empty:
        return pd.Series(dtype="string")
    codes, receipts = pd.factorize(applications["cash_receipt_id"])
    status = applications["status"].to_numpy(dtype=object)
    amount = applications["amount_applied_cents"].to_numpy(dtype=np.int64)
    net = {}
    for s in APPLICATION_STATUSES:
        sums = pd.Series(np.where(status == s, amount, 0)).groupby(codes).sum()
        net[s] = sums.reindex(range(len(receipts)), fill_value=0).to_numpy() != 0
    out = np.select([net["UNID"], net["UNAPP"], net["APP"], net["ACC"]], ["UNID", "UNAPP", "APP", "ACC"], "APP")
    return pd.Series(out, index=pd.Index(np.asarray(receipts, dtype=object), name="cash_receipt_id"))


def receipt_statuses(receipts: pd.DataFrame, applications: pd.DataFrame) -> pd.Series:
    """Each receipt's status now: REV stays REV; the others follow the net of their applications."""
    status = _status_from(applications).reindex(receipts["cash_receipt_id"]).to_numpy()
    rev = (receipts["status"] == "REV").to_numpy()
    return pd.Series(np.where(rev, "REV", status), index=receipts.index, dtype="string")


def open_items_after(open_items: pd.DataFrame, applications: pd.DataFrame,
                     write_offs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Open items after applications (and approved write-offs): remaining reduced, status OP/CL.

    A reversal's negative APP rows raise the remaining again, so a returned payment re-opens its items.
    """
    out = open_items.copy()
    applied = applications.loc[applications["status"] == "APP"].groupby(
        "applied_payment_schedule_id")["amount_applied_cents"].sum()
    reduce = out["payment_schedule_id"].map(applied).fillna(0).astype("int64")
    if write_offs is not None and len(write_offs):
        reduce = reduce + out["payment_schedule_id"].map(
            write_offs.groupby("payment_schedule_id")["amount_cents"].sum()).fillna(0).astype("int64")
    out["amount_due_remaining_cents"] = (out["amount_due_remaining_cents"].astype("int64") - reduce).astype("int64")
    out["status"] = np.where(out["amount_due_remaining_cents"] == 0, "CL", "OP")
    return out


def correct_receipt(receipt: pd.Series | dict, applications: pd.DataFrame, open_items: pd.DataFrame,
                    customer_id: str, allocations: Sequence[tuple[str, int]], *, rest_on_account: bool = False,
                    comment: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A person's correction of a suggested or unidentified receipt.

    `allocations`: (payment_schedule_id, cents) to apply; `open_items` as they stand now. Returns the
    new application rows (a negative row clearing what waited as UNAPP/UNID, then APP rows and the rest as
    UNAPP — or ACC with `rest_on_account`) and the payer-map rows it teaches (the payment's IBAN and
    name now point at `customer_id`). Raises CashApplicationError naming the receipt, item and field.
    """
    rec = dict(receipt)
    rid = rec["cash_receipt_id"]
    mine = applications[applications["cash_receipt_id"] == rid]
    if rec.get("status") == "REV":
        raise CashApplicationError(f"receipt {rid}: status REV: a reversed receipt cannot be corrected")
    waiting = mine[mine["status"].isin(["UNAPP", "UNID"])].groupby("status")["amount_applied_cents"].sum()
    waiting = waiting[waiting != 0]
    total = int(waiting.sum())
    if total <= 0:
        raise CashApplicationError(f"receipt {rid}: field status: nothing is unapplied or unidentified to correct")
    items = open_items.set_index("payment_schedule_id")
    alloc_total = 0
    for psid, cents in allocations:
        if psid not in items.index:
            raise CashApplicationError(f"receipt {rid}: item {psid}: field payment_schedule_id: no such open item")
        it = items.loc[psid]
        if it["customer_id"] != customer_id:
            raise CashApplicationError(f"receipt {rid}: item {psid}: field customer_id: belongs to "
                                       f"{it['customer_id']}, not {customer_id}")
        if it["currency"] != rec["currency"]:
            raise CashApplicationError(f"receipt {rid}: item {psid}: field currency: {it['currency']} is not the "
                                       f"receipt's {rec['currency']}")
        if int(cents) <= 0 or int(cents) > int(it["amount_due_remaining_cents"]):
            raise CashApplicationError(f"receipt {rid}: item {psid}: field amount_cents: {int(cents)} is not between "
                                       f"1 and the item's remaining {int(it['amount_due_remaining_cents'])}")
        alloc_total += int(cents)
    if alloc_total > total:
        raise CashApplicationError(f"receipt {rid}: field amount_cents: allocations {alloc_total} exceed the "
                                   f"{total} waiting to be applied")
    seq = len(mine)
    date = rec.get("receipt_date")
    why = "MANUAL" + (f";{comment}" if comment else "")
    rows = []

    def add(status, cents, psid=None, trx=None, cust=customer_id):
        nonlocal seq
        seq += 1
        rows.append({"receivable_application_id": f"{rid}#{seq}", "cash_receipt_id": rid, "status": status,
                     "applied_payment_schedule_id": psid, "applied_trx_number": trx,
                     "customer_id": None if status == "UNID" else cust, "currency": rec["currency"],
                     "amount_applied_cents": int(cents), "apply_date": date, "score": 100, "reason_codes": why,
                     "reversal_of": None})

    for status, cents in waiting.items():
        prev_cust = mine.loc[mine["status"] == status, "customer_id"].dropna()
        add(status, -int(cents), cust=prev_cust.iloc[0] if len(prev_cust) else None)
    for psid, cents in allocations:
        add("APP", cents, psid, items.loc[psid, "trx_number"])
    if total - alloc_total:
        add("ACC" if rest_on_account else "UNAPP", total - alloc_total)
    learned = []
    if rec.get("payer_iban") and pd.notna(rec.get("payer_iban")):
        learned.append({"kind": "iban", "value": normalise_iban(rec["payer_iban"]), "customer_id": customer_id,
                        "source": "correction"})
    if rec.get("payer_name") and pd.notna(rec.get("payer_name")) and normalise_name(rec["payer_name"]):
        learned.append({"kind": "name", "value": normalise_name(rec["payer_name"]), "customer_id": customer_id,
                        "source": "correction"})
    return (as_dataset(pd.DataFrame(rows, columns=APPLICATIONS.names), APPLICATIONS),
            pd.DataFrame(learned, columns=PAYER_MAP.names).astype("string"))


def check_applications_balance(receipts: pd.DataFrame, applications: pd.DataFrame) -> pd.DataFrame:
    """Receipts whose applications do not sum to the amount (empty when all balance)."""
    net = applications.groupby("cash_receipt_id")["amount_applied_cents"].sum()
    got = receipts.set_index("cash_receipt_id")["amount_cents"]
    diff = got - net.reindex(got.index, fill_value=0)
    return diff[diff != 0].rename("difference_cents").reset_index()


# --- frames -------------------------------------------------------------------------------------------------------
def _or_empty(df: pd.DataFrame | None, dataset: Dataset) -> pd.DataFrame:
    if df is None:
        return as_dataset(pd.DataFrame(columns=dataset.names), dataset)
    return df


def as_dataset(df: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """`df` with exactly the dataset's columns, in order, in its dtypes (text as pandas string)."""
    out = {}
    for c in dataset.columns:
        s = df[c.name] if c.name in df.columns else pd.Series([None] * len(df), dtype="object")
        s = s.reset_index(drop=True)
        if c.dtype == "int64":
            out[c.name] = s.astype("int64")
        elif c.dtype == "date":
            out[c.name] = pd.to_datetime(s).astype("datetime64[ns]")
        elif c.dtype == "bool":
            out[c.name] = s.astype("bool")
        else:
            out[c.name] = s.astype("string")
    return pd.DataFrame(out, columns=dataset.names)


def tokens_in(text: str) -> Iterable[str]:
    """The normalised tokens an invoice number is looked up by (for explanations and tests)."""
    upper = str(text).upper()
    found = re.findall(r"[^\s,;]+", upper) + re.findall(r"[^\s,;/]+", upper)
    return [t for t in dict.fromkeys(normalise_reference(x) for x in found) if len(t) >= 4]
