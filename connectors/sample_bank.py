"""The sample company's bank and mailbox: a month of statements for its customers' payments, and inquiries.

`sample_month(period)` takes the sample company's receivables as they stood when the month began
(``connectors.sample_ar.generate_ar`` at the period's first day, for the customers of
``connectors.sample_company``) and has the customers pay during the month, seeded and deterministic.
Every case cash application must handle appears at least once:

| scenario | what the bank reports |
|---|---|
| exact_ref | one invoice paid in full, its number in the remittance text |
| split_ref | several invoices in one payment, their numbers listed (structured RfrdDocInf or text) |
| rf_ref | one invoice paid with its ISO 11649 creditor reference (structured CdtrRefInf) |
| fee_short | one invoice paid net of bank charges (reported in Chrgs) |
| partial | part of an invoice, its number in the text |
| over | an invoice paid with 100.00 too much |
| split_no_ref | two invoices in one payment with no reference (only the IBAN tells the payer) |
| name_only | a US customer: no IBAN, the name and the invoice number |
| advice_no_ref | two invoices paid with "see remittance advice"; the advice arrives by e-mail |
| unknown_payer | money from an account and name nobody knows, no reference |
| return | an invoice paid, then the payment comes back (camt.054 debit with RtrInf / MT940 RC) |

Statements: the EUR and USD accounts report in camt.053.001.08 (one statement a week), the GBP account
in MT940 (German structured :86:), returns are notified in camt.054.001.02. `write_month` writes them,
the truth (`expected.csv`: scenario and items per bank line), the customers' bank accounts, an
invoice archive (one JSON copy per invoice) and an inbox of ``.eml`` inquiries (one per category).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from billing.money import cents_to_decimal
from billing.periods import Period
from receivables.bank_statements import STATEMENT_ENTRIES
from receivables.cash_application import item_creditor_reference

SCENARIOS = ("exact_ref", "split_ref", "rf_ref", "fee_short", "partial", "over", "split_no_ref", "name_only",
             "advice_no_ref", "unknown_payer", "return")
# Customers of connectors.sample_ar with a story of not paying: they pay nothing in the month.
NOT_PAYING = ("stopped", "plan_breaker")


@dataclass(frozen=True)
class OurAccount:
    currency: str
    iban: str
    bic: str
    format: str      # camt.053 or mt940


OUR_ACCOUNTS = {
    "EUR": OurAccount("EUR", "DE89370400440532013000", "COBADEFFXXX", "camt.053"),
    "GBP": OurAccount("GBP", "GB33BUKB20201555555555", "BUKBGB22XXX", "mt940"),
    "USD": OurAccount("USD", "DE21500105170648489890", "INGDDEFFXXX", "camt.053"),
}


def iban(country: str, bban: str) -> str:
    """An IBAN with its ISO 13616 check digits (mod 97), checked by schwifty."""
    from schwifty import IBAN

    digits = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    value = f"{country}{98 - digits % 97:02d}{bban}"
    return IBAN(value).compact


def customer_accounts(customers: pd.DataFrame) -> pd.DataFrame:
    """One bank account per customer, in its tax country; US customers have none (no IBAN there)."""
    rows = []
    for i, c in enumerate(customers.itertuples(index=False)):
        n = i + 1
        if c.tax_country == "DE":
            value = iban("DE", f"50010517{n:010d}")
        elif c.tax_country == "GB":
            value = iban("GB", f"NWBK601613{n:08d}")
        elif c.tax_country == "BG":
            value = iban("BG", f"UNCR7000{15:02d}{n:08d}")
        else:
            continue
        rows.append({"customer_id": c.customer_id, "iban": value})
    return pd.DataFrame(rows, columns=["customer_id", "iban"])


# --- the month's payments -------------------------------------------------------------------------------------
@dataclass
class SampleMonth:
    period: Period
    customers: pd.DataFrame          # the sample company's customers (canonical columns)
    open_items: pd.DataFrame         # OPEN_ITEMS as the month began
    accounts: pd.DataFrame           # customer_id, iban
    lines: pd.DataFrame              # STATEMENT_ENTRIES + account_currency, scenario, expected_items
    inquiries: list[tuple[str, bytes]]   # (file name, .eml bytes)
    ledger: dict[str, pd.DataFrame]  # the whole generate_ar output (history, accounts, notes...)


def sample_month(period: Period, seed: int = 20261, n_items: int = 10_000) -> SampleMonth:
    """The month's bank lines and inquiries for the sample company (see the module doc)."""
    from connectors.sample_ar import FIXED_PROFILES, generate_ar
    from connectors.sample_company import generate

    customers = generate(period.previous(), n_items, seed)["customers"]
    ledger = generate_ar(period.start, customers=customers, seed=seed)
    items = ledger["open_items"]
    accounts = customer_accounts(customers)
    silent = {customers["customer_id"].iloc[i] for i, p in FIXED_PROFILES.items()
              if p in NOT_PAYING and i < len(customers)}
    gen = _Payments(period, customers, items, accounts, silent, np.random.default_rng(seed + 11))
    lines = gen.build()
    paid = {p for x in lines["expected_items"] for p in str(x).split()}
    inquiries = _inquiries(period, customers, items[~items["payment_schedule_id"].isin(paid)], gen.advices, seed)
    return SampleMonth(period, customers, items, accounts, lines, inquiries, ledger)


class _Payments:
    def __init__(self, period, customers, items, accounts, silent, rng):
        self.p, self.customers, self.items, self.rng = period, customers.reset_index(drop=True), items, rng
        self.iban_of = dict(zip(accounts["customer_id"], accounts["iban"], strict=True))
        self.silent = silent
        self.rows: list[dict] = []
        self.advices: list[dict] = []
        self.n = 0

    def _day(self, due) -> pd.Timestamp:
        """Around the due date; an item already overdue is paid some day of the month."""
        start, end = self.p.start_ts, self.p.end_ts
        if pd.Timestamp(due) < start:
            return start + pd.Timedelta(days=int(self.rng.integers(1, self.p.days - 2)))
        day = pd.Timestamp(due) + pd.Timedelta(days=int(self.rng.integers(-3, 6)))
        return min(max(day, start + pd.Timedelta(days=1)), end - pd.Timedelta(days=2)).normalize()

    def _line(self, scenario, cust, amount, currency, day, *, name=None, payer_iban=None, text=None, rf=None,
              docs=None, charges=0, is_return=False, reason=None, e2e=None, expected=()):
        self.n += 1
        ref = f"{self.p.year % 100:02d}{self.p.month:02d}{self.n:06d}"
        return self.rows.append({
            "statement_id": "", "source_format": "", "account_iban": OUR_ACCOUNTS[currency].iban,
            "entry_id": f"NTRY{ref}", "bank_reference": f"BR{ref}", "end_to_end_id": e2e or f"E2E-{ref}",
            "booking_date": day, "value_date": day, "amount_cents": int(amount), "currency": currency,
            "counterparty_name": name, "counterparty_iban": payer_iban, "remittance_text": text,
            "creditor_reference": rf, "referenced_documents": docs, "charges_cents": int(charges),
            "is_return": is_return, "return_reason": reason, "bank_tx_code": "PMNT/RCDT/ESCT" if not is_return
            else "PMNT/RCDT/RRTN", "booked": True, "scenario": scenario, "customer_id": cust,
            "expected_items": " ".join(expected)})

    def build(self) -> pd.DataFrame:
        it = self.items
        horizon = self.p.end_ts + pd.Timedelta(days=10)
        open_inv = it[(it["status"] == "OP") & (it["trx_class"] == "INV") & (it["amount_due_remaining_cents"] > 0)
                      & (it["amount_in_dispute_cents"] == 0) & (it["due_date"] <= horizon)]
        open_inv = open_inv.sort_values(["customer_id", "due_date", "payment_schedule_id"])
        by_customer = {c: g for c, g in open_inv.groupby("customer_id")}
        # Each scenario once on the first customers that can show it (a return in each statement format),
        # then mostly exact payments.
        pending = [(s, None) for s in SCENARIOS if s != "return"] + [("return", "camt.053"), ("return", "mt940")]
        for c in self.customers.itertuples(index=False):
            g = by_customer.get(c.customer_id)
            if c.customer_id in self.silent or g is None or c.currency not in OUR_ACCOUNTS:
                continue
            scenario = self._pick(pending, c, g)
            self._pay(scenario, c, g)
        return self._frame()

    def _pick(self, pending: list[tuple[str, str | None]], c, g) -> str:
        for s, fmt in list(pending):
            if fmt is not None and OUR_ACCOUNTS[c.currency].format != fmt:
                continue
            if (s == "name_only") != (c.tax_country == "US"):
                continue
            if s in ("split_ref", "split_no_ref", "advice_no_ref") and len(g) < 2:
                continue
            pending.remove((s, fmt))
            return s
        if c.tax_country == "US":
            return "name_only"
        return str(self.rng.choice(["exact_ref", "exact_ref", "exact_ref", "split_ref", "rf_ref", "fee_short",
                                    "partial", "over"]))

    def _pay(self, s: str, c, g: pd.DataFrame) -> None:
        first = g.iloc[0]
        ccy, cid = c.currency, c.customer_id
        name = c.customer_name
        if s == "name_only":
            # US banks send the name as typed by the payer: upper case, and now and then a typo.
            name = name.upper() if len(self.rows) % 2 else name.replace("Systems", "Sytems").replace("Foods", "Fods")
        payer = self.iban_of.get(cid)
        day = self._day(first["due_date"])
        amt, trx, psid = int(first["amount_due_remaining_cents"]), first["trx_number"], first["payment_schedule_id"]
        if s in ("exact_ref", "name_only"):
            self._line(s, cid, amt, ccy, day, name=name, payer_iban=payer, text=f"Invoice {trx}", expected=[psid])
        elif s == "split_ref":
            two = g.iloc[:3]
            self._line(s, cid, int(two["amount_due_remaining_cents"].sum()), ccy, day, name=name, payer_iban=payer,
                       docs=" ".join(two["trx_number"]), expected=list(two["payment_schedule_id"]))
        elif s == "rf_ref":
            self._line(s, cid, amt, ccy, day, name=name, payer_iban=payer, rf=item_creditor_reference(trx),
                       expected=[psid])
        elif s == "fee_short":
            fee = int(self.rng.integers(5, 26)) * 100 + 50
            self._line(s, cid, amt - fee, ccy, day, name=name, payer_iban=payer, text=f"{trx} less our bank charges",
                       charges=fee, expected=[psid])
        elif s == "partial":
            part = amt // 2 // 100 * 100
            self._line(s, cid, part, ccy, day, name=name, payer_iban=payer, text=f"Part payment {trx}",
                       expected=[psid])
        elif s == "over":
            self._line(s, cid, amt + 10000, ccy, day, name=name, payer_iban=payer, text=f"INVOICE {trx}",
                       expected=[psid])
        elif s == "split_no_ref":
            two = g.iloc[:2]
            self._line(s, cid, int(two["amount_due_remaining_cents"].sum()), ccy, day, name=name, payer_iban=payer,
                       text=f"Payment {self.p}", expected=list(two["payment_schedule_id"]))
        elif s == "advice_no_ref":
            two = g.iloc[:2]
            total = int(two["amount_due_remaining_cents"].sum())
            self._line(s, cid, total, ccy, day, name=name, payer_iban=payer, text="see remittance advice",
                       expected=list(two["payment_schedule_id"]))
            self.advices.append({"customer": c, "items": two, "total": total, "day": day})
        elif s == "return":
            e2e = f"E2E-RET-{cid}"
            self._line("return", cid, amt, ccy, day, name=name, payer_iban=payer, text=f"Invoice {trx}", e2e=e2e,
                       expected=[psid])
            back = min(day + pd.Timedelta(days=6), self.p.end_ts - pd.Timedelta(days=1))
            self._line("return", cid, -amt, ccy, back, name=name, payer_iban=payer, text=f"RETURN Invoice {trx}",
                       e2e=e2e, is_return=True, reason="AC04", expected=[psid])
        if s == "exact_ref" and not any(r["scenario"] == "unknown_payer" for r in self.rows):
            self._line("unknown_payer", None, int(self.rng.integers(200, 900)) * 100 + 37, ccy, day,
                       name="Orion Trading Co", payer_iban=iban("NL", "ABNA0417164300"),
                       text="Payment")

    def _frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows)
        df = df.sort_values(["currency", "booking_date", "entry_id"]).reset_index(drop=True)
        return df


# --- writers ---------------------------------------------------------------------------------------------------
CAMT053 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"


def _el(parent, tag, text=None, **attrib):
    e = etree.SubElement(parent, tag, {k: v for k, v in attrib.items() if v is not None})
    if text is not None:
        e.text = str(text)
    return e


def _amt(parent, tag, cents: int, currency: str):
    return _el(parent, tag, str(cents_to_decimal(abs(int(cents)))), Ccy=currency)


def camt053(lines: pd.DataFrame, account: OurAccount, statement_id: str, created: date, opening_cents: int,
            seq: int) -> bytes:
    """A camt.053.001.08 statement of `lines` (one entry per line), with opening and closing balances."""
    nsmap = {None: CAMT053}
    doc = etree.Element(f"{{{CAMT053}}}Document", nsmap=nsmap)
    q = f"{{{CAMT053}}}"
    body = _el(doc, q + "BkToCstmrStmt")
    hdr = _el(body, q + "GrpHdr")
    _el(hdr, q + "MsgId", f"MSG-{statement_id}")
    _el(hdr, q + "CreDtTm", f"{created.isoformat()}T06:00:00")
    st = _el(body, q + "Stmt")
    _el(st, q + "Id", statement_id)
    _el(st, q + "ElctrncSeqNb", seq)
    _el(st, q + "CreDtTm", f"{created.isoformat()}T06:00:00")
    acct = _el(st, q + "Acct")
    _el(_el(acct, q + "Id"), q + "IBAN", account.iban)
    _el(acct, q + "Ccy", account.currency)
    _el(_el(_el(acct, q + "Svcr"), q + "FinInstnId"), q + "BICFI", account.bic)
    closing = opening_cents + int(lines["amount_cents"].sum())
    for code, cents, day in (("OPBD", opening_cents, lines["booking_date"].min()),
                             ("CLBD", closing, lines["booking_date"].max())):
        bal = _el(st, q + "Bal")
        _el(_el(_el(bal, q + "Tp"), q + "CdOrPrtry"), q + "Cd", code)
        _amt(bal, q + "Amt", cents, account.currency)
        _el(bal, q + "CdtDbtInd", "CRDT" if cents >= 0 else "DBIT")
        _el(_el(bal, q + "Dt"), q + "Dt", pd.Timestamp(day).date().isoformat())
    summary = _el(_el(st, q + "TxsSummry"), q + "TtlNtries")
    _el(summary, q + "NbOfNtries", len(lines))
    for r in lines.itertuples(index=False):
        _camt_entry(st, q, r, account.currency, v08=True)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def camt054(lines: pd.DataFrame, account: OurAccount, notification_id: str, created: date) -> bytes:
    """A camt.054.001.02 debit/credit notification (the older version: Sts as text, Dbtr/Nm)."""
    doc = etree.Element(f"{{{CAMT054}}}Document", nsmap={None: CAMT054})
    q = f"{{{CAMT054}}}"
    body = _el(doc, q + "BkToCstmrDbtCdtNtfctn")
    hdr = _el(body, q + "GrpHdr")
    _el(hdr, q + "MsgId", f"MSG-{notification_id}")
    _el(hdr, q + "CreDtTm", f"{created.isoformat()}T18:00:00")
    nt = _el(body, q + "Ntfctn")
    _el(nt, q + "Id", notification_id)
    _el(nt, q + "CreDtTm", f"{created.isoformat()}T18:00:00")
    acct = _el(nt, q + "Acct")
    _el(_el(acct, q + "Id"), q + "IBAN", account.iban)
    for r in lines.itertuples(index=False):
        _camt_entry(nt, q, r, account.currency, v08=False)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


TEXT_FIELDS = ("counterparty_name", "counterparty_iban", "remittance_text", "creditor_reference",
               "referenced_documents", "end_to_end_id", "return_reason")


def _s(value) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) or value is pd.NA else str(value)


def _camt_entry(parent, q, r, currency, v08: bool):
    r = r._replace(**{f: _s(getattr(r, f)) for f in TEXT_FIELDS})
    n = _el(parent, q + "Ntry")
    _el(n, q + "NtryRef", r.entry_id)
    _amt(n, q + "Amt", r.amount_cents, currency)
    _el(n, q + "CdtDbtInd", "CRDT" if r.amount_cents > 0 else "DBIT")
    _el(n, q + "RvslInd", "false")
    if v08:
        _el(_el(n, q + "Sts"), q + "Cd", "BOOK")
    else:
        _el(n, q + "Sts", "BOOK")
    _el(_el(n, q + "BookgDt"), q + "Dt", pd.Timestamp(r.booking_date).date().isoformat())
    _el(_el(n, q + "ValDt"), q + "Dt", pd.Timestamp(r.value_date).date().isoformat())
    _el(n, q + "AcctSvcrRef", r.bank_reference)
    domain, family, sub = r.bank_tx_code.split("/")
    d = _el(_el(n, q + "BkTxCd"), q + "Domn")
    _el(d, q + "Cd", domain)
    f = _el(d, q + "Fmly")
    _el(f, q + "Cd", family)
    _el(f, q + "SubFmlyCd", sub)
    tx = _el(_el(n, q + "NtryDtls"), q + "TxDtls")
    refs = _el(tx, q + "Refs")
    _el(refs, q + "AcctSvcrRef", r.bank_reference)
    _el(refs, q + "EndToEndId", r.end_to_end_id or "NOTPROVIDED")
    if v08:
        _amt(tx, q + "Amt", r.amount_cents, currency)
        _el(tx, q + "CdtDbtInd", "CRDT" if r.amount_cents > 0 else "DBIT")
    if r.charges_cents:
        ch = _el(tx, q + "Chrgs")
        if v08:
            rec = _el(ch, q + "Rcrd")
            _amt(rec, q + "Amt", r.charges_cents, currency)
        else:
            _amt(ch, q + "Amt", r.charges_cents, currency)
    if r.counterparty_name or r.counterparty_iban:
        rp = _el(tx, q + "RltdPties")
        if r.counterparty_name:
            dbtr = _el(rp, q + "Dbtr")
            _el(_el(dbtr, q + "Pty") if v08 else dbtr, q + "Nm", r.counterparty_name)
        if r.counterparty_iban:
            _el(_el(_el(rp, q + "DbtrAcct"), q + "Id"), q + "IBAN", r.counterparty_iban)
    if r.remittance_text or r.creditor_reference or r.referenced_documents:
        rmt = _el(tx, q + "RmtInf")
        if r.remittance_text:
            _el(rmt, q + "Ustrd", r.remittance_text[:140])
        for doc in (r.referenced_documents or "").split():
            _el(_el(_el(rmt, q + "Strd"), q + "RfrdDocInf"), q + "Nb", doc)
        if r.creditor_reference:
            cri = _el(_el(rmt, q + "Strd"), q + "CdtrRefInf")
            _el(_el(_el(cri, q + "Tp"), q + "CdOrPrtry"), q + "Cd", "SCOR")
            _el(cri, q + "Ref", r.creditor_reference)
    if r.is_return:
        _el(_el(_el(tx, q + "RtrInf"), q + "Rsn"), q + "Cd", r.return_reason or "NARR")


def mt940(lines: pd.DataFrame, account: OurAccount, reference: str, number: int, opening_cents: int) -> bytes:
    """An MT940 statement with German structured :86: (?20-?29 purpose, ?31 IBAN, ?32/?33 name)."""
    def amount(cents: int) -> str:
        return str(cents_to_decimal(abs(int(cents)))).replace(".", ",")

    first = pd.Timestamp(lines["booking_date"].min())
    last = pd.Timestamp(lines["booking_date"].max())
    closing = opening_cents + int(lines["amount_cents"].sum())
    out = [f":20:{reference}", f":25:{account.iban}", f":28C:{number}/1",
           f":60F:{'C' if opening_cents >= 0 else 'D'}{(first - pd.Timedelta(days=1)):%y%m%d}{account.currency}"
           f"{amount(opening_cents)}"]
    for r in lines.itertuples(index=False):
        r = r._replace(**{f: _s(getattr(r, f)) for f in TEXT_FIELDS})
        mark = ("RC" if r.is_return else "C") if r.amount_cents > 0 or r.is_return else "D"
        day = pd.Timestamp(r.value_date)
        out.append(f":61:{day:%y%m%d}{pd.Timestamp(r.booking_date):%m%d}{mark}{amount(r.amount_cents)}NTRF"
                   f"{(r.end_to_end_id or 'NONREF')[:16]}//{r.bank_reference}")
        purpose = " ".join(x for x in (r.remittance_text, _s(r.referenced_documents)) if x)
        if r.creditor_reference:
            purpose = f"{purpose} {r.creditor_reference}".strip()
        if r.end_to_end_id:
            purpose = f"EREF+{r.end_to_end_id} SVWZ+{purpose}"
        chunks = [purpose[i:i + 27] for i in range(0, len(purpose), 27)][:10] or [""]
        fields = ["166" if not r.is_return else "159", "?00SEPA-GUTSCHRIFT" if not r.is_return else "?00RETOURE"]
        fields += [f"?{20 + k}{c}" for k, c in enumerate(chunks)]
        if r.counterparty_iban:
            fields.append(f"?31{r.counterparty_iban}")
        if r.counterparty_name:
            fields += [f"?32{r.counterparty_name[:27]}"] + ([f"?33{r.counterparty_name[27:54]}"]
                                                           if len(r.counterparty_name) > 27 else [])
        out.append(":86:" + "".join(fields))
    out.append(f":62F:{'C' if closing >= 0 else 'D'}{last:%y%m%d}{account.currency}{amount(closing)}")
    return ("\r\n".join(out) + "\r\n-").encode("latin-1", "replace")


def statement_files(month: SampleMonth, opening_cents: int = 10_000_000) -> dict[str, bytes]:
    """The month's files by name: weekly camt.053 per camt account, one MT940, one camt.054 of returns."""
    lines = month.lines
    p = month.period
    files: dict[str, bytes] = {}
    returns = lines[lines["is_return"]]
    credits = lines[~lines["is_return"]]
    for currency, account in OUR_ACCOUNTS.items():
        mine = credits[credits["currency"] == currency]
        if mine.empty:
            continue
        if account.format == "mt940":
            body = pd.concat([mine, returns[returns["currency"] == currency]]).sort_values(["booking_date", "entry_id"])
            files[f"mt940-{currency}-{p}.sta"] = mt940(body, account, f"STMT{p.year}{p.month:02d}{currency}",
                                                       p.month, opening_cents)
            continue
        week = ((mine["booking_date"].dt.day - 1) // 7 + 1).to_numpy()
        balance = opening_cents
        for w in sorted(set(week)):
            chunk = mine[week == w]
            sid = f"STMT-{currency}-{p}-W{w}"
            created = (pd.Timestamp(chunk["booking_date"].max()) + pd.Timedelta(days=1)).date()
            files[f"camt053-{currency}-{p}-W{w}.xml"] = camt053(chunk, account, sid, created, balance, int(w))
            balance += int(chunk["amount_cents"].sum())
    camt_returns = returns[returns["currency"].map(lambda c: OUR_ACCOUNTS[c].format == "camt.053")]
    for currency, chunk in camt_returns.groupby("currency"):
        nid = f"NTF-RET-{currency}-{p}"
        created = pd.Timestamp(chunk["booking_date"].max()).date()
        files[f"camt054-{currency}-{p}-returns.xml"] = camt054(chunk, OUR_ACCOUNTS[currency], nid, created)
    return files


# --- inbox ---------------------------------------------------------------------------------------------------------
def _inquiries(period: Period, customers: pd.DataFrame, items: pd.DataFrame, advices: list[dict],
               seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed + 23)
    op = items[(items["status"] == "OP") & (items["trx_class"] == "INV")].sort_values("payment_schedule_id")
    cust = customers.set_index("customer_id")
    out = []

    def mail(n, cid, subject, body, when, attachment=None):
        c = cust.loc[cid]
        m = EmailMessage()
        m["From"] = f"Accounts Payable <{c['billing_email']}>"
        m["To"] = "billing@sample-company.example"
        m["Subject"] = subject
        m["Date"] = pd.Timestamp(when).strftime("%a, %d %b %Y 09:15:00 +0000")
        m["Message-ID"] = f"<inq-{period}-{n}@{c['billing_email'].split('@')[1]}>"
        m.set_content(body)
        if attachment:
            name, data = attachment
            m.add_attachment(data, maintype="text", subtype="csv", filename=name)
        out.append((f"{period}-{n:02d}.eml", bytes(m)))

    for k, a in enumerate(advices, start=1):
        c = a["customer"]
        rows = "\n".join(f"{t},{cents_to_decimal(v)}" for t, v in zip(a["items"]["trx_number"],
                                                                      a["items"]["amount_due_remaining_cents"],
                                                                      strict=True))
        body = (f"Dear billing team,\n\nwe have paid the invoices listed in the attached remittance advice.\n"
                f"Total: {c.currency} {cents_to_decimal(a['total'])}\n\nRegards,\nAccounts Payable\n")
        mail(k, c.customer_id, "Remittance advice", body, a["day"] - pd.Timedelta(days=1),
             ("remittance.csv", f"invoice,amount\n{rows}\n".encode()))
    picks = op.drop_duplicates("customer_id").reset_index(drop=True)
    if len(picks) >= 3:
        i1, i2, i3 = picks.iloc[0], picks.iloc[len(picks) // 2], picks.iloc[-1]
        day = period.start_ts + pd.Timedelta(days=int(rng.integers(3, 10)))
        mail(20, i1["customer_id"], f"Copy of invoice {i1['trx_number']}",
             f"Hello,\n\ncould you please send us a copy of invoice {i1['trx_number']}? We cannot find it.\n\nThanks",
             day)
        disputed = cents_to_decimal(int(i2["amount_due_remaining_cents"]) * 3 // 10)
        mail(21, i2["customer_id"], f"Invoice {i2['trx_number']}",
             f"Hello,\n\nthe hours on invoice {i2['trx_number']} are wrong: we dispute {i2['currency']} {disputed} "
             "of it. Please correct.\n\nRegards", day + pd.Timedelta(days=2))
        mail(22, i3["customer_id"], "Our account",
             "Hello,\n\ncould you tell us our current balance with you?\n\nRegards", day + pd.Timedelta(days=4))
        mail(23, i1["customer_id"], "Quotation request",
             "Hello,\n\nwe would like a quotation for a new project in Q1.\n\nRegards", day + pd.Timedelta(days=5))
    return out


def invoice_archive(items: pd.DataFrame) -> dict[str, bytes]:
    """One JSON copy per invoice, named by transaction number (what the billing archive would hold)."""
    out = {}
    for trx, g in items[items["trx_class"] == "INV"].groupby("trx_number"):
        first = g.iloc[0]
        out[f"{trx}.json"] = json.dumps({
            "trx_number": trx, "customer_id": first["customer_id"], "currency": first["currency"],
            "trx_date": str(pd.Timestamp(first["trx_date"]).date()),
            "installments": [{"due_date": str(pd.Timestamp(r.due_date).date()),
                              "amount": str(cents_to_decimal(int(r.amount_due_original_cents)))}
                             for r in g.itertuples(index=False)]}, indent=1).encode()
    return out


def write_month(month: SampleMonth, folder: Path | str) -> dict[str, list[Path]]:
    """Write statements/, inbox/, archive/, expected.csv and customer_accounts.csv under `folder`."""
    folder = Path(folder)
    written: dict[str, list[Path]] = {"statements": [], "inbox": [], "archive": []}
    for sub, files in (("statements", statement_files(month)), ("inbox", dict(month.inquiries)),
                       ("archive", invoice_archive(month.open_items))):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = folder / sub / name
            path.write_bytes(data)
            written[sub].append(path)
    expected = month.lines[["entry_id", "bank_reference", "currency", "amount_cents", "scenario", "customer_id",
                            "expected_items"]]
    expected.to_csv(folder / "expected.csv", index=False)
    month.accounts.to_csv(folder / "customer_accounts.csv", index=False)
    return written


def entries_of(month: SampleMonth) -> pd.DataFrame:
    """The bank lines as STATEMENT_ENTRIES (without the truth columns)."""
    return month.lines[STATEMENT_ENTRIES.names]

