"""Bank statements in, one frame of statement entries out: ISO 20022 camt.052/053/054 and SWIFT MT940.

Pure: the functions take the file's bytes and a name for it (used in every error message) and return a
frame in ``STATEMENT_ENTRIES``; nothing here opens a file or looks at the clock.

camt is read with lxml against the structure of the standard, whatever its version: the namespace of
the root ``Document`` must be ``urn:iso:std:iso:20022:tech:xsd:camt.05{2,3,4}.001.NN`` and its child the
matching message (``BkToCstmrAcctRpt``, ``BkToCstmrStmt``, ``BkToCstmrDbtCdtNtfctn``); every element is
then looked up in that namespace, so .001.02 and .001.08+ read alike (``Sts`` as text or ``Sts/Cd``,
``Dbtr/Nm`` or ``Dbtr/Pty/Nm``, ``TxDtls/Amt`` or ``AmtDtls/TxAmt/Amt``). One row per transaction:
an entry with several ``TxDtls`` (batch booking) gives one row per ``TxDtls``, and their amounts must
add up to the entry's.

MT940 is parsed by ``mt-940`` (import name ``mt940``), a maintained parser, with all of its
``Options`` on (reversal marks RC signed like debits, ``?31`` read as the counterparty IBAN). The
German structured ``:86:`` (``?20``-``?29`` purpose, ``?31`` IBAN, ``?32``/``?33`` name) is read by
the parser; the SWIFT slash form (``/EREF/.../REMI/...//ORDP//NAME/...``) by ``_slash_fields`` here.

Amounts are int64 cents, signed from our account's side: credits (money in) positive, debits negative.
A returned or reversed payment is flagged ``is_return``: camt ``RtrInf``, ``RvslInd`` true or a
bank-transaction sub-family of a return (RRTN, UPDD, RPCR); MT940 marks RC/RD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation

import pandas as pd
from lxml import etree

from billing.columns import MINOR_UNITS, Column, Dataset
from billing.money import format_cents

STATEMENT_ENTRIES = Dataset(
    "statement_entries", ("bank_reference", "entry_id"),
    "One row per transaction reported by the bank (camt TxDtls or MT940 :61: line).", (
        Column("statement_id", "string", "Statement (camt Stmt/Ntfctn/Rpt Id, MT940 :20:/:28C:)."),
        Column("source_format", "string", "Message and version, e.g. camt.053.001.08 or mt940."),
        Column("account_iban", "string", "Our account the entry was booked on.", nullable=True),
        Column("entry_id", "string", "Entry key within the bank's reporting (NtryRef, else statement/position)."),
        Column("bank_reference", "string", "Account servicer's reference (AcctSvcrRef, MT940 //ref).", nullable=True),
        Column("end_to_end_id", "string", "The payer's end-to-end reference (EndToEndId, MT940 EREF).",
               nullable=True),
        Column("booking_date", "date", "Date booked on our account."),
        Column("value_date", "date", "Value date (the receipt date)."),
        Column("amount_cents", "int64", "Signed amount: credit (money in) positive, debit negative."),
        Column("currency", "string", "ISO 4217 currency of the amount."),
        Column("counterparty_name", "string", "Payer's name (debtor of a credit).", nullable=True),
        Column("counterparty_iban", "string", "Payer's IBAN, upper case without spaces.", nullable=True),
        Column("remittance_text", "string", "Unstructured remittance information, lines joined by spaces.",
               nullable=True),
        Column("creditor_reference", "string", "Structured creditor reference (ISO 11649 RF), when valid.",
               nullable=True),
        Column("referenced_documents", "string", "Document numbers of structured remittance, space-separated.",
               nullable=True),
        Column("charges_cents", "int64", "Charges the bank reported as deducted (0 when none)."),
        Column("is_return", "bool", "A returned or reversed payment."),
        Column("return_reason", "string", "ISO return reason code (AM04, AC04, ...) when given.", nullable=True),
        Column("bank_tx_code", "string", "Bank transaction code, Domain/Family/SubFamily or proprietary.",
               nullable=True),
        Column("booked", "bool", "Entry status is booked (pending and informational entries are not)."),
    ))

CAMT_NAMESPACE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.(05[234])\.001\.(\d{2})$")
CAMT_MESSAGES = {"052": ("BkToCstmrAcctRpt", "Rpt"), "053": ("BkToCstmrStmt", "Stmt"),
                 "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
RETURN_SUBFAMILIES = frozenset({"RRTN", "UPDD", "RPCR"})
NOT_PROVIDED = frozenset({"NOTPROVIDED", "NONREF", ""})


class StatementError(ValueError):
    """A statement file cannot be read: names the file, the record and the field."""


# --- ISO 11649 structured creditor reference ---------------------------------------------------------
_RF = re.compile(r"RF\d{2}[A-Z0-9]{1,21}")


def _iso7064_digits(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text))


def is_valid_creditor_reference(ref: str | None) -> bool:
    """ISO 11649: 'RF', two check digits, 1-21 alphanumerics; mod 97 of the rearranged digits is 1."""
    if not ref:
        return False
    ref = re.sub(r"\s+", "", ref).upper()
    return bool(_RF.fullmatch(ref)) and _iso7064_digits(ref[4:] + ref[:4]) % 97 == 1


def creditor_reference(base: str) -> str:
    """The ISO 11649 reference for `base` (1-21 letters/digits): 'RF' + check digits + base."""
    base = re.sub(r"[^A-Za-z0-9]", "", base).upper()
    if not 1 <= len(base) <= 21:
        raise ValueError(f"an RF reference carries 1 to 21 letters or digits, not {len(base)} ({base!r})")
    check = 98 - _iso7064_digits(base + "RF00") % 97
    return f"RF{check:02d}{base}"


_RF_TOKEN = re.compile(r"\bRF\d{2}[A-Z0-9]{1,21}\b")
_RF_PRINTED = re.compile(r"\bRF\d{2}(?: [A-Z0-9]{1,4}\b){1,6}")  # 'RF18 5390 0754 7034'


def find_creditor_references(text: str | None) -> list[str]:
    """Every valid RF reference in free text, written as one token or in printed groups of four.

    A printed reference may be followed by other short words: the longest run of groups that carries
    valid check digits is taken.
    """
    if not text:
        return []
    upper = text.upper()
    found = list(_RF_TOKEN.findall(upper))
    for m in _RF_PRINTED.finditer(upper):
        groups = m.group(0).split(" ")
        for k in range(len(groups), 1, -1):
            candidate = "".join(groups[:k])
            if is_valid_creditor_reference(candidate):
                found.append(candidate)
                break
    return list(dict.fromkeys(r for r in found if is_valid_creditor_reference(r)))


# --- entry point ---------------------------------------------------------------------------------------
def read_statement(data: bytes, origin: str) -> pd.DataFrame:
    """Parse a camt (XML) or MT940 statement; `origin` names the file in errors."""
    if not data or not data.strip():
        raise StatementError(f"{origin}: the file is empty")
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return parse_camt(data, origin)
    if re.search(rb"(^|[\n{]|4:):20:", head) and re.search(rb":(25|60F|60M|61):", head):
        return parse_mt940(data, origin)
    raise StatementError(f"{origin}: neither an ISO 20022 camt XML document nor an MT940 statement "
                         f"(it starts with {head[:30]!r})")


# --- camt -------------------------------------------------------------------------------------------------
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)


def parse_camt(data: bytes, origin: str) -> pd.DataFrame:
    """camt.052/053/054 of any .001 version to STATEMENT_ENTRIES."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise StatementError(f"{origin}: not well-formed XML ({exc.msg}, line {exc.lineno})") from None
    qname = etree.QName(root)
    match = CAMT_NAMESPACE.match(qname.namespace or "")
    if qname.localname != "Document" or not match:
        raise StatementError(
            f"{origin}: not an ISO 20022 camt.052/053/054 document: root element is "
            f"{{{qname.namespace or ''}}}{qname.localname}, expected Document in namespace "
            "urn:iso:std:iso:20022:tech:xsd:camt.05x.001.NN")
    message, version = match.group(1), match.group(2)
    fmt = f"camt.{message}.001.{version}"
    x = _Camt(qname.namespace, origin, fmt)
    msg_tag, report_tag = CAMT_MESSAGES[message]
    body = root.find(x.q(msg_tag))
    if body is None:
        found = ", ".join(etree.QName(c).localname for c in root) or "nothing"
        raise StatementError(f"{origin}: {fmt} document has no {msg_tag} element (found {found})")
    rows: list[dict] = []
    reports = body.findall(x.q(report_tag))
    if not reports:
        raise StatementError(f"{origin}: {fmt} {msg_tag} has no {report_tag} (statement) element")
    for r_pos, report in enumerate(reports, start=1):
        stmt_id = x.text(report, "Id") or f"{x.text(body, 'GrpHdr/MsgId') or 'statement'}-{r_pos}"
        account = _iban(x.text(report, "Acct/Id/IBAN") or x.text(report, "Acct/Id/Othr/Id"))
        for n_pos, entry in enumerate(report.findall(x.q("Ntry")), start=1):
            rows.extend(x.entry_rows(entry, stmt_id, account, n_pos))
    return _frame(rows)


class _Camt:
    def __init__(self, ns: str, origin: str, fmt: str):
        self.ns, self.origin, self.fmt = ns, origin, fmt

    def q(self, path: str) -> str:
        return "/".join(f"{{{self.ns}}}{p}" for p in path.split("/"))

    def find(self, el, path: str):
        return el.find(self.q(path))

    def text(self, el, path: str) -> str | None:
        found = el.find(self.q(path))
        if found is None or found.text is None:
            return None
        value = found.text.strip()
        return value or None

    def texts(self, el, path: str) -> list[str]:
        return [t.text.strip() for t in el.findall(self.q(path)) if t.text and t.text.strip()]

    def fail(self, where: str, field: str, message: str) -> StatementError:
        return StatementError(f"{self.origin}: {where}: field {field}: {message}")

    def amount(self, el, path: str, where: str, required: bool = True) -> tuple[int, str] | None:
        node = el.find(self.q(path))
        if node is None:
            if required:
                raise self.fail(where, path, "is missing")
            return None
        currency = (node.get("Ccy") or "").strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise self.fail(where, f"{path}/@Ccy", f"{node.get('Ccy')!r} is not an ISO 4217 currency code")
        return _cents(node.text, currency, lambda m: self.fail(where, path, m)), currency

    def date(self, el, path: str, where: str) -> date | None:
        text = self.text(el, f"{path}/Dt") or self.text(el, f"{path}/DtTm")
        if text is None:
            return None
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise self.fail(where, path, f"{text!r} is not an ISO date") from None

    def entry_rows(self, entry, stmt_id: str, account: str | None, pos: int) -> list[dict]:
        ntry_ref = self.text(entry, "NtryRef")
        where = f"statement {stmt_id}, entry {pos}" + (f" ({ntry_ref})" if ntry_ref else "")
        amount, currency = self.amount(entry, "Amt", where)
        sign = self._sign(self.text(entry, "CdtDbtInd"), where, "CdtDbtInd")
        reversal = (self.text(entry, "RvslInd") or "").lower() in ("true", "1")
        status = self.text(entry, "Sts/Cd") or self.text(entry, "Sts/Prtry") or self.text(entry, "Sts")
        booking = self.date(entry, "BookgDt", where)
        value = self.date(entry, "ValDt", where) or booking
        booking = booking or value
        if booking is None:
            raise self.fail(where, "BookgDt", "is missing (and so is ValDt)")
        entry_code = self._tx_code(entry)
        base = {
            "statement_id": stmt_id, "source_format": self.fmt, "account_iban": account,
            "booking_date": booking, "value_date": value, "currency": currency,
            "booked": (status or "BOOK").upper() == "BOOK",
        }
        details = [d for nd in entry.findall(self.q("NtryDtls")) for d in nd.findall(self.q("TxDtls"))]
        entry_id = ntry_ref or f"{stmt_id}/{pos}"
        entry_ref = self.text(entry, "AcctSvcrRef")
        if not details:
            return [{**base, "entry_id": entry_id, "bank_reference": entry_ref, "end_to_end_id": None,
                     "amount_cents": sign * amount, "counterparty_name": None, "counterparty_iban": None,
                     "remittance_text": self.text(entry, "AddtlNtryInf"), "creditor_reference": None,
                     "referenced_documents": None, "charges_cents": self._charges(entry, where),
                     "is_return": reversal or _is_return_code(entry_code), "return_reason": None,
                     "bank_tx_code": entry_code}]
        rows = []
        for t_pos, tx in enumerate(details, start=1):
            t_where = f"{where}, transaction {t_pos}"
            if len(details) == 1:
                t_amount, t_sign = amount, sign
            else:
                found = (self.amount(tx, "Amt", t_where, required=False)
                         or self.amount(tx, "AmtDtls/TxAmt/Amt", t_where, required=False)
                         or self.amount(tx, "AmtDtls/InstdAmt/Amt", t_where, required=False))
                if found is None:
                    raise self.fail(t_where, "Amt", "is missing on a batch-booked entry (needed to split it)")
                t_amount = found[0]
                ind = self.text(tx, "CdtDbtInd")
                t_sign = self._sign(ind, t_where, "CdtDbtInd") if ind else sign
            code = self._tx_code(tx) or entry_code
            reason = self.text(tx, "RtrInf/Rsn/Cd") or self.text(tx, "RtrInf/Rsn/Prtry")
            is_return = reversal or _is_return_code(code) or tx.find(self.q("RtrInf")) is not None
            name, iban = self._counterparty(tx, t_sign, is_return, account)
            refs = self.texts(tx, "RmtInf/Strd/CdtrRefInf/Ref")
            valid_refs = [r for r in (re.sub(r"\s+", "", r).upper() for r in refs) if is_valid_creditor_reference(r)]
            docs = self.texts(tx, "RmtInf/Strd/RfrdDocInf/Nb")
            e2e = self.text(tx, "Refs/EndToEndId")
            rows.append({
                **base,
                "entry_id": entry_id if len(details) == 1 else f"{entry_id}/{t_pos}",
                "bank_reference": self.text(tx, "Refs/AcctSvcrRef") or entry_ref,
                "end_to_end_id": None if (e2e or "").upper() in NOT_PROVIDED else e2e,
                "amount_cents": t_sign * t_amount, "counterparty_name": name, "counterparty_iban": iban,
                "remittance_text": " ".join(self.texts(tx, "RmtInf/Ustrd")) or self.text(tx, "AddtlTxInf") or (
                    self.text(entry, "AddtlNtryInf") if len(details) == 1 else None),
                "creditor_reference": valid_refs[0] if valid_refs else None,
                "referenced_documents": " ".join(docs) or None,
                "charges_cents": self._charges(tx, t_where) or (
                    self._charges(entry, where) if len(details) == 1 else 0),
                "is_return": is_return, "return_reason": reason, "bank_tx_code": code,
            })
        if len(details) > 1:
            total = sum(r["amount_cents"] for r in rows)
            if total != sign * amount:
                raise self.fail(where, "NtryDtls/TxDtls/Amt", f"the transactions add up to {format_cents(total)}, "
                                f"the entry says {format_cents(sign * amount)}")
        return rows

    def _sign(self, indicator: str | None, where: str, field: str) -> int:
        if indicator == "CRDT":
            return 1
        if indicator == "DBIT":
            return -1
        raise self.fail(where, field, f"{indicator!r} is not CRDT or DBIT")

    def _tx_code(self, el) -> str | None:
        domain = self.text(el, "BkTxCd/Domn/Cd")
        if domain:
            return "/".join(p for p in (domain, self.text(el, "BkTxCd/Domn/Fmly/Cd"),
                                        self.text(el, "BkTxCd/Domn/Fmly/SubFmlyCd")) if p)
        return self.text(el, "BkTxCd/Prtry/Cd")

    def _party(self, tx, role: str) -> tuple[str | None, str | None]:
        name = (self.text(tx, f"RltdPties/{role}/Nm") or self.text(tx, f"RltdPties/{role}/Pty/Nm")
                or self.text(tx, f"RltdPties/Ultmt{role}/Nm") or self.text(tx, f"RltdPties/Ultmt{role}/Pty/Nm"))
        iban = self.text(tx, f"RltdPties/{role}Acct/Id/IBAN")
        return name, _iban(iban)

    def _counterparty(self, tx, sign: int, is_return: bool, account: str | None):
        # The payer is the debtor of a credit. A returned payment is booked as a debit but concerns the
        # original payer, who banks report as the debtor too; fall back to the creditor otherwise.
        first, second = ("Dbtr", "Cdtr") if sign > 0 or is_return else ("Cdtr", "Dbtr")
        for role in (first, second):
            name, iban = self._party(tx, role)
            if (name or iban) and not (iban and account and iban == account):
                return name, iban
        return None, None

    def _charges(self, el, where: str) -> int:
        records = el.findall(self.q("Chrgs/Rcrd"))
        if records:
            return sum(self.amount(r, "Amt", where)[0] for r in records)
        total = self.amount(el, "Chrgs/TtlChrgsAndTaxAmt", where, required=False)
        if total:
            return total[0]
        return sum(self._cents_of(a, where) for a in el.findall(self.q("Chrgs/Amt")))

    def _cents_of(self, node, where: str) -> int:
        currency = (node.get("Ccy") or "").upper()
        return _cents(node.text, currency, lambda m: self.fail(where, "Chrgs/Amt", m))


def _is_return_code(code: str | None) -> bool:
    return bool(code) and code.split("/")[-1] in RETURN_SUBFAMILIES


# --- MT940 ------------------------------------------------------------------------------------------------
def parse_mt940(data: bytes, origin: str) -> pd.DataFrame:
    """SWIFT MT940 (one or several statements in a file) to STATEMENT_ENTRIES, with the `mt940` parser."""
    import mt940

    try:
        statements = mt940.parse_statements(data, options=mt940.Options.all())
    except RuntimeError as exc:
        args = exc.args
        tag = getattr(args[1], "id", "?") if len(args) > 1 else "?"
        value = args[2] if len(args) > 2 else ""
        raise StatementError(f"{origin}: MT940 field :{tag}: cannot be parsed: {value!r}") from None
    except (ValueError, InvalidOperation, KeyError) as exc:
        raise StatementError(f"{origin}: not a valid MT940 statement ({type(exc).__name__}: {exc})") from None
    if not statements or not any(s.data.get("transaction_reference") for s in statements):
        raise StatementError(f"{origin}: no MT940 statement found (no :20: transaction reference)")
    rows: list[dict] = []
    for s_pos, stmt in enumerate(statements, start=1):
        ref = stmt.data.get("transaction_reference") or f"MT940-{s_pos}"
        number = stmt.data.get("statement_number")
        seq = stmt.data.get("sequence_number")
        stmt_id = ref + (f"/{number}" if number else "") + (f"/{seq}" if seq else "")
        account = stmt.data.get("account_identification")
        account = _iban(account.split("/")[-1]) if account else None
        for t_pos, tx in enumerate(stmt, start=1):
            rows.append(_mt940_row(tx.data, stmt_id, account, t_pos, origin))
    return _frame(rows)


def _mt940_row(d: dict, stmt_id: str, account: str | None, pos: int, origin: str) -> dict:
    where = f"{origin}: statement {stmt_id}, line {pos}"
    amount = d.get("amount")
    if amount is None:
        raise StatementError(f"{where}: field :61: amount is missing")
    currency = str(amount.currency or d.get("currency") or "").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise StatementError(f"{where}: field :60F: currency {currency!r} is not an ISO 4217 code")
    # The parser signs the amount (D and, with Options.reversal_sign, RC negative).
    magnitude = _cents(str(abs(amount.amount)), currency,
                       lambda m: StatementError(f"{where}: field :61: amount: {m}"))
    cents = -magnitude if amount.amount < 0 else magnitude
    status = str(d.get("status") or "")
    details = d.get("transaction_details") or ""
    slash = _slash_fields(details) if details.startswith("/") else {}
    remittance = d.get("purpose") or slash.get("REMI") or (None if slash else details.strip() or None)
    if remittance and d.get("additional_purpose"):
        remittance = f"{remittance} {d['additional_purpose']}"
    gvc_e2e = d.get("end_to_end_reference")
    cust_ref = d.get("customer_reference")
    e2e = gvc_e2e or slash.get("EREF") or (cust_ref if (cust_ref or "").upper() not in NOT_PROVIDED else None)
    name = d.get("applicant_name") or slash.get("ORDP") or slash.get("BENM")
    iban = d.get("applicant_iban") or d.get("gvc_applicant_iban") or slash.get("IBAN")
    refs = find_creditor_references(remittance)
    return_code = slash.get("RTRN")
    return {
        "statement_id": stmt_id, "source_format": "mt940", "account_iban": account,
        "entry_id": f"{stmt_id}/{pos}", "bank_reference": (d.get("bank_reference") or "").strip() or None,
        "end_to_end_id": e2e, "booking_date": _as_date(d.get("entry_date") or d.get("date")),
        "value_date": _as_date(d.get("date")), "amount_cents": cents, "currency": currency,
        "counterparty_name": name.strip() if name else None, "counterparty_iban": _iban(iban),
        "remittance_text": remittance.strip() if remittance else None,
        "creditor_reference": refs[0] if refs else None, "referenced_documents": None, "charges_cents": 0,
        "is_return": status.upper().startswith("R") or bool(return_code),
        "return_reason": return_code.split("/")[0] if return_code else d.get("return_debit_notes"),
        "bank_tx_code": d.get("id"), "booked": True,
    }


_SLASH_KEYS = ("EREF", "KREF", "MARF", "CREF", "REMI", "ORDP", "BENM", "IBAN", "RTRN", "PURP", "ULTD", "ULTC",
               "SVWZ", "BIC")


def _slash_fields(text: str) -> dict[str, str]:
    """SWIFT/NVB structured :86: ('/EREF/x/REMI/USTD//text/ORDP//NAME/Acme/...'): key -> value."""
    text = text.replace("\n", "")
    keys = "|".join(_SLASH_KEYS)
    parts = re.split(rf"/({keys})/", "/" + text.lstrip("/") if not text.startswith("/") else text)
    out: dict[str, str] = {}
    for key, value in zip(parts[1::2], parts[2::2], strict=False):
        value = value.strip("/").strip()
        if key == "REMI":
            value = re.sub(r"^(USTD|STRD)//?", "", value).strip("/").strip()
        elif key in ("ORDP", "BENM"):
            m = re.search(r"NAME/([^/]+)", value)
            value = m.group(1).strip() if m else value
        out.setdefault(key, value)
    return out


# --- shared helpers -----------------------------------------------------------------------------------------
def _iban(text: str | None) -> str | None:
    if not text:
        return None
    value = re.sub(r"\s+", "", text).upper()
    return value or None


def normalise_iban(text: str | None) -> str | None:
    """Upper case without spaces (how IBANs are compared everywhere)."""
    return _iban(text)


def _cents(text: str | None, currency: str, fail) -> int:
    raw = (text or "").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise fail(f"{raw!r} is not a decimal amount") from None
    if not value.is_finite() or value < 0:
        raise fail(f"{raw!r} is not a non-negative amount (the sign is in CdtDbtInd)")
    minor = MINOR_UNITS.get(currency, 2)
    cents = value.scaleb(minor)
    if cents != cents.to_integral_value():
        raise fail(f"{raw!r} has more than {minor} decimals for {currency}")
    return int(cents)


def _as_date(value) -> date | None:
    if value is None:
        return None
    return date(value.year, value.month, value.day)


def _frame(rows: Iterable[dict]) -> pd.DataFrame:
    rows = list(rows)
    cols = STATEMENT_ENTRIES.names
    df = pd.DataFrame(rows, columns=cols)
    out = {}
    for c in STATEMENT_ENTRIES.columns:
        s = df[c.name]
        if c.dtype == "date":
            out[c.name] = pd.to_datetime(s).astype("datetime64[ns]")
        elif c.dtype == "int64":
            out[c.name] = s.astype("int64")
        elif c.dtype == "bool":
            out[c.name] = s.astype("bool")
        else:
            out[c.name] = s.astype("string")
    return pd.DataFrame(out, columns=cols)


def receipt_key(bank_reference: str | None, entry_id: str) -> str:
    """The receipt's key: bank reference and entry id (so a statement loaded twice is recognised)."""
    return f"{bank_reference or '-'}:{entry_id}"
