"""Statement files to statement entries: camt.053/054 in two versions of the standard, MT940, and errors."""

import pandas as pd
import pytest

from receivables.bank_statements import (
    STATEMENT_ENTRIES,
    StatementError,
    creditor_reference,
    find_creditor_references,
    is_valid_creditor_reference,
    read_statement,
)

NS02 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
NS08 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"

# camt.053.001.02: Sts as text, Dbtr/Nm, one entry with a structured RF reference and bank charges,
# one batch-booked entry with two transactions, one returned payment (debit with RtrInf).
CAMT053_V02 = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NS02}">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-10-16T06:00:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>STMT-20261015</Id>
   <Acct><Id><IBAN>DE89 3704 0044 0532 0130 00</IBAN></Id><Ccy>EUR</Ccy></Acct>
   <Ntry>
    <NtryRef>N1</NtryRef>
    <Amt Ccy="EUR">1190.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>false</RvslInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-10-15</Dt></BookgDt><ValDt><Dt>2026-10-14</Dt></ValDt>
    <AcctSvcrRef>BANKREF-1</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls>
     <Refs><EndToEndId>E2E-1</EndToEndId></Refs>
     <Chrgs><Amt Ccy="EUR">10.00</Amt></Chrgs>
     <RltdPties><Dbtr><Nm>Acme Systems GmbH</Nm></Dbtr>
      <DbtrAcct><Id><IBAN>de44500105175407324931</IBAN></Id></DbtrAcct></RltdPties>
     <RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>RF18 5390 0754 7034</Ref>
     </CdtrRefInf></Strd></RmtInf>
    </TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">300.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-10-15</Dt></BookgDt>
    <AcctSvcrRef>BANKREF-2</AcctSvcrRef>
    <NtryDtls>
     <Btch><NbOfTxs>2</NbOfTxs></Btch>
     <TxDtls><Refs><AcctSvcrRef>BANKREF-2A</AcctSvcrRef><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
      <AmtDtls><TxAmt><Amt Ccy="EUR">100.25</Amt></TxAmt></AmtDtls>
      <RmtInf><Ustrd>INV-1001</Ustrd><Ustrd>and INV-1002</Ustrd></RmtInf></TxDtls>
     <TxDtls><Refs><AcctSvcrRef>BANKREF-2B</AcctSvcrRef></Refs>
      <AmtDtls><TxAmt><Amt Ccy="EUR">200.25</Amt></TxAmt></AmtDtls>
      <RmtInf><Strd><RfrdDocInf><Nb>INV-1003</Nb></RfrdDocInf></Strd>
       <Strd><RfrdDocInf><Nb>INV-1004</Nb></RfrdDocInf></Strd></RmtInf></TxDtls>
    </NtryDtls>
   </Ntry>
   <Ntry>
    <NtryRef>N3</NtryRef>
    <Amt Ccy="EUR">500.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-10-15</Dt></BookgDt><AcctSvcrRef>BANKREF-3</AcctSvcrRef>
    <NtryDtls><TxDtls>
     <Refs><EndToEndId>E2E-0</EndToEndId></Refs>
     <RltdPties><Dbtr><Nm>Borealis Foods Ltd</Nm></Dbtr><DbtrAcct><Id><IBAN>GB29NWBK60161331926819</IBAN></Id>
      </DbtrAcct><Cdtr><Nm>Us</Nm></Cdtr><CdtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></CdtrAcct>
     </RltdPties>
     <RtrInf><Rsn><Cd>AM04</Cd></Rsn></RtrInf>
    </TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">75.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>PDNG</Sts>
    <BookgDt><Dt>2026-10-15</Dt></BookgDt>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>
""".encode()

# camt.054.001.08: Sts/Cd, Dbtr/Pty/Nm, DtTm dates, a reversal flagged by RvslInd.
CAMT054_V08 = b"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">
 <BkToCstmrDbtCdtNtfctn>
  <GrpHdr><MsgId>N-1</MsgId><CreDtTm>2026-10-20T09:00:00</CreDtTm></GrpHdr>
  <Ntfctn>
   <Id>NTF-1</Id>
   <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>
   <Ntry>
    <NtryRef>X9</NtryRef>
    <Amt Ccy="GBP">12.30</Amt><CdtDbtInd>DBIT</CdtDbtInd><RvslInd>true</RvslInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><DtTm>2026-10-20T08:15:00</DtTm></BookgDt><ValDt><Dt>2026-10-19</Dt></ValDt>
    <AcctSvcrRef>R-9</AcctSvcrRef>
    <NtryDtls><TxDtls><RltdPties><Dbtr><Pty><Nm>Cobalt Energy Inc.</Nm></Pty></Dbtr></RltdPties>
     <RmtInf><Ustrd>return of INV-7</Ustrd></RmtInf></TxDtls></NtryDtls>
   </Ntry>
  </Ntfctn>
 </BkToCstmrDbtCdtNtfctn>
</Document>
"""

MT940 = b""":20:STMT-1015
:25:DE89370400440532013000
:28C:15/1
:60F:C261014EUR1000,00
:61:2610151015C1234,56NTRFE2E-55//BR-0001
:86:166?00SEPA CREDIT?20INV-2026-10-C00001-K0000?2101-EUR thanks?31DE44500105175407324931?32ACME SYSTEMS GMBH
:61:2610151015RC99,90NTRFNONREF//BR-0002
:86:/RTRN/AM04/EREF/E2E-9/REMI/USTD//INV-1001/ORDP//NAME/Borealis Foods Ltd
:62F:C261015EUR2135,66
"""


def test_camt053_v02_gives_one_row_per_transaction_signed_in_cents():
    e = read_statement(CAMT053_V02, "oct15.xml")
    assert list(e.columns) == STATEMENT_ENTRIES.names
    assert len(e) == 5  # 1 + 2 (batch) + 1 return + 1 pending
    assert e["amount_cents"].tolist() == [119000, 10025, 20025, -50000, 7500]
    assert e["amount_cents"].dtype == "int64"
    assert set(e["source_format"]) == {"camt.053.001.02"}
    assert set(e["account_iban"]) == {"DE89370400440532013000"}
    first = e.iloc[0]
    assert first["entry_id"] == "N1" and first["bank_reference"] == "BANKREF-1"
    assert first["end_to_end_id"] == "E2E-1"
    assert first["counterparty_name"] == "Acme Systems GmbH"
    assert first["counterparty_iban"] == "DE44500105175407324931"
    assert first["creditor_reference"] == "RF18539007547034"
    assert first["charges_cents"] == 1000
    assert first["booking_date"] == pd.Timestamp("2026-10-15") and first["value_date"] == pd.Timestamp("2026-10-14")
    assert first["bank_tx_code"] == "PMNT/RCDT/ESCT"
    assert not first["is_return"] and first["booked"]


def test_camt_batch_booked_entry_splits_into_transactions_with_their_references():
    e = read_statement(CAMT053_V02, "oct15.xml")
    batch = e.iloc[1:3]
    assert batch["entry_id"].tolist() == ["STMT-20261015/2/1", "STMT-20261015/2/2"]
    assert batch["bank_reference"].tolist() == ["BANKREF-2A", "BANKREF-2B"]
    assert batch["remittance_text"].iloc[0] == "INV-1001 and INV-1002"
    assert batch["referenced_documents"].iloc[1] == "INV-1003 INV-1004"
    assert pd.isna(batch["end_to_end_id"].iloc[0])  # NOTPROVIDED is no reference


def test_camt_return_is_flagged_with_reason_and_the_original_payer():
    e = read_statement(CAMT053_V02, "oct15.xml")
    ret = e.iloc[3]
    assert ret["is_return"] and ret["return_reason"] == "AM04"
    assert ret["counterparty_name"] == "Borealis Foods Ltd"
    assert ret["counterparty_iban"] == "GB29NWBK60161331926819"
    assert not e.iloc[4]["booked"]  # PDNG


def test_camt054_v08_reads_party_and_status_and_reversal():
    e = read_statement(CAMT054_V08, "ntf.xml")
    assert len(e) == 1
    row = e.iloc[0]
    assert row["source_format"] == "camt.054.001.08"
    assert row["amount_cents"] == -1230 and row["currency"] == "GBP"
    assert row["is_return"] and row["booked"]
    assert row["counterparty_name"] == "Cobalt Energy Inc."
    assert row["booking_date"] == pd.Timestamp("2026-10-20")
    assert row["value_date"] == pd.Timestamp("2026-10-19")


def test_mt940_reads_structured_86_and_signs_reversals():
    e = read_statement(MT940, "oct15.sta")
    assert e["amount_cents"].tolist() == [123456, -9990]
    first, second = e.iloc[0], e.iloc[1]
    assert first["statement_id"] == "STMT-1015/15/1" and first["entry_id"] == "STMT-1015/15/1/1"
    assert first["bank_reference"] == "BR-0001" and first["end_to_end_id"] == "E2E-55"
    assert first["remittance_text"] == "INV-2026-10-C00001-K000001-EUR thanks"
    assert first["counterparty_iban"] == "DE44500105175407324931"
    assert first["counterparty_name"] == "ACME SYSTEMS GMBH"
    assert first["account_iban"] == "DE89370400440532013000"
    assert not first["is_return"]
    assert second["is_return"] and second["return_reason"] == "AM04"
    assert second["end_to_end_id"] == "E2E-9"
    assert second["remittance_text"] == "INV-1001"
    assert second["counterparty_name"] == "Borealis Foods Ltd"


def test_creditor_reference_follows_iso_11649():
    # The standard's example: RF18 5390 0754 7034.
    assert creditor_reference("539007547034") == "RF18539007547034"
    assert is_valid_creditor_reference("RF18 5390 0754 7034")
    assert not is_valid_creditor_reference("RF19539007547034")
    assert find_creditor_references("pay RF18 5390 0754 7034 now; RF00X bad") == ["RF18539007547034"]


@pytest.mark.parametrize("data, message", [
    (b"", "oct.xml: the file is empty"),
    (b"<Document><BkToCstmrStmt>", "oct.xml: not well-formed XML"),
    (b"<?xml version='1.0'?><Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>",
     "not an ISO 20022 camt.052/053/054 document: root element is "
     "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"),
    (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.09'/>", "not an ISO 20022 camt"),
    (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'><BkToCstmrDbtCdtNtfctn/></Document>",
     "camt.053.001.08 document has no BkToCstmrStmt element (found BkToCstmrDbtCdtNtfctn)"),
    (b"hello, this is not a statement", "neither an ISO 20022 camt XML document nor an MT940 statement"),
])
def test_unreadable_files_get_a_clear_error(data, message):
    with pytest.raises(StatementError) as err:
        read_statement(data, "oct.xml")
    assert message in str(err.value)


def _entry(amount: str, indicator: str = "CRDT", extra: str = "") -> bytes:
    return f"""<Document xmlns="{NS08}"><BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S1</Id>
      <Ntry><NtryRef>E7</NtryRef><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>
      <Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-10-01</Dt></BookgDt>{extra}</Ntry></Stmt></BkToCstmrStmt>
      </Document>""".encode()


@pytest.mark.parametrize("data, message", [
    (_entry("12.345"), "s.xml: statement S1, entry 1 (E7): field Amt: '12.345' has more than 2 decimals for EUR"),
    (_entry("abc"), "s.xml: statement S1, entry 1 (E7): field Amt: 'abc' is not a decimal amount"),
    (_entry("10.00", "CREDIT"), "s.xml: statement S1, entry 1 (E7): field CdtDbtInd: 'CREDIT' is not CRDT or DBIT"),
    (_entry("10.00", extra="<NtryDtls><TxDtls><Amt Ccy='EUR'>4.00</Amt></TxDtls><TxDtls><Amt Ccy='EUR'>5.00</Amt>"
                           "</TxDtls></NtryDtls>"),
     "s.xml: statement S1, entry 1 (E7): field NtryDtls/TxDtls/Amt: the transactions add up to 9.00, the entry says "
     "10.00"),
    (_entry("10.00", extra="<NtryDtls><TxDtls/><TxDtls/></NtryDtls>"),
     "s.xml: statement S1, entry 1 (E7), transaction 1: field Amt: is missing on a batch-booked entry"),
])
def test_bad_camt_records_name_the_record_and_the_field(data, message):
    with pytest.raises(StatementError) as err:
        read_statement(data, "s.xml")
    assert message in str(err.value)


def test_mt940_with_a_broken_statement_line_names_the_field():
    bad = b":20:X\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C261014EUR1,00\n:61:garbage\n:62F:C261015EUR1,00\n"
    with pytest.raises(StatementError, match=r"bad\.sta: MT940 field :61: cannot be parsed: 'garbage'"):
        read_statement(bad, "bad.sta")
