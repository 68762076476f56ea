"""The subset of SOQL the emulator answers, parsed strictly: anything outside it is refused, never guessed.

Supported: ``SELECT f1, f2, Rel.f3 FROM Object [WHERE cond AND cond ...] [ORDER BY f [ASC|DESC], ...]
[LIMIT n]`` and ``SELECT COUNT() FROM Object [WHERE ...]``, where a condition is ``field op literal``
(op one of = != <> < <= > >=), ``field IN (literal, ...)``, ``field NOT IN (...)`` or ``field LIKE 'pat'``.
Literals: 'strings' (SOQL escapes), numbers, true/false, null, dates (2026-10-01) and datetimes
(2026-10-01T00:00:00Z, +00:00 or +0000 offsets). OR, parentheses, functions, date literals such as
TODAY, GROUP BY, OFFSET and sub-queries raise `SoqlError` (the server answers MALFORMED_QUERY).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any


class SoqlError(ValueError):
    """A query the emulator cannot answer exactly. `code` is the Salesforce errorCode to send."""

    def __init__(self, message: str, code: str = "MALFORMED_QUERY"):
        super().__init__(message)
        self.code = code


_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
   |(?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2}))
   |(?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
   |(?P<num>[-+]?\d+(?:\.\d+)?)(?![\w.])
   |(?P<op><=|>=|!=|<>|=|<|>)
   |(?P<punct>[(),])
   |(?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::[A-Za-z0-9_]+)?)
)""", re.VERBOSE)

_UNSUPPORTED = {"OR", "NOT_LIKE", "GROUP", "HAVING", "OFFSET", "TYPEOF", "WITH", "FOR", "USING",
                "INCLUDES", "EXCLUDES", "NULLS"}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Literal:
    kind: str          # string, number, boolean, null, date, datetime
    value: Any
    raw: str = ""      # for strings: the text between the quotes, escapes intact (LIKE needs them)


@dataclass(frozen=True)
class Condition:
    field: str
    op: str            # = != < <= > >= IN NOT IN LIKE
    values: tuple[Literal, ...]


@dataclass
class Query:
    sobject: str
    fields: list[str] | None                   # None for SELECT COUNT()
    where: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None

    @property
    def is_count(self) -> bool:
        return self.fields is None


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SoqlError(f"unexpected character {text[pos:].lstrip()[:20]!r} at position {pos}")
        kind = m.lastgroup or ""
        tokens.append(Token(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


def parse(text: str) -> Query:
    """Parse one SOQL statement or raise SoqlError saying what is not supported."""
    return _Parser(tokenize(text)).query()


def _unescape(raw: str) -> str:
    out, i = [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            if i + 1 >= len(raw):
                raise SoqlError("string literal ends with a lone backslash")
            nxt = raw[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "%_":
                out.append("\\" + nxt)  # only meaningful in LIKE; kept so LIKE can tell them apart
            else:
                raise SoqlError(f"invalid escape sequence \\{nxt} in string literal")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _parse_datetime(text: str) -> datetime:
    t = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", t):
        t = t[:-2] + ":" + t[-2:]
    return datetime.fromisoformat(t).astimezone(UTC)


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise SoqlError(f"unexpected end of query, expecting {what}")
        self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        return bool(tok is not None and tok.kind == "ident" and tok.text.upper() in words)

    def expect_keyword(self, word: str) -> None:
        tok = self.next(word)
        if tok.kind != "ident" or tok.text.upper() != word:
            raise SoqlError(f"unexpected token {tok.text!r} at position {tok.pos}, expecting {word}")

    def expect_punct(self, ch: str) -> None:
        tok = self.next(repr(ch))
        if tok.text != ch:
            raise SoqlError(f"unexpected token {tok.text!r} at position {tok.pos}, expecting {ch!r}")

    def identifier(self, what: str) -> str:
        tok = self.next(what)
        if tok.kind != "ident":
            raise SoqlError(f"unexpected token {tok.text!r} at position {tok.pos}, expecting {what}")
        if tok.text.upper() in _UNSUPPORTED:
            raise SoqlError(f"{tok.text.upper()} is not supported by the emulator")
        return tok.text

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[str] | None = []
        if self.keyword("COUNT") and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1].text == "(":
            self.i += 2
            if self.peek() is not None and self.peek().text != ")":
                raise SoqlError("only COUNT() without a field is supported by the emulator")
            self.expect_punct(")")
            fields = None
        else:
            while True:
                name = self.identifier("a field name")
                if self.peek() is not None and self.peek().text == "(":
                    raise SoqlError(f"function {name}() is not supported by the emulator")
                fields.append(name)
                if self.peek() is not None and self.peek().text == ",":
                    self.i += 1
                    continue
                break
        self.expect_keyword("FROM")
        sobject = self.identifier("an object name")
        q = Query(sobject=sobject, fields=fields)
        if self.keyword("WHERE"):
            self.i += 1
            q.where.append(self.condition())
            while self.keyword("AND", "OR"):
                if self.keyword("OR"):
                    raise SoqlError("OR is not supported by the emulator (only AND)")
                self.i += 1
                q.where.append(self.condition())
        if self.keyword("ORDER"):
            self.i += 1
            self.expect_keyword("BY")
            while True:
                name = self.identifier("a field to order by")
                desc = False
                if self.keyword("ASC", "DESC"):
                    desc = self.next("ASC/DESC").text.upper() == "DESC"
                if self.keyword("NULLS"):
                    raise SoqlError("NULLS FIRST/LAST is not supported by the emulator")
                q.order_by.append((name, desc))
                if self.peek() is not None and self.peek().text == ",":
                    self.i += 1
                    continue
                break
        if self.keyword("LIMIT"):
            self.i += 1
            tok = self.next("a row limit")
            if tok.kind != "num" or not tok.text.isdigit():
                raise SoqlError(f"LIMIT needs a non-negative whole number, not {tok.text!r}")
            q.limit = int(tok.text)
        tok = self.peek()
        if tok is not None:
            raise SoqlError(f"unexpected token {tok.text!r} at position {tok.pos}"
                            f" ({tok.text.upper()} is not supported by the emulator)"
                            if tok.kind == "ident" else f"unexpected token {tok.text!r} at position {tok.pos}")
        return q

    def condition(self) -> Condition:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            raise SoqlError("parenthesised conditions are not supported by the emulator")
        if self.keyword("NOT"):
            raise SoqlError("NOT is not supported by the emulator")
        name = self.identifier("a field name")
        if self.keyword("IN"):
            self.i += 1
            return Condition(name, "IN", self.literal_list())
        if self.keyword("NOT"):
            self.i += 1
            self.expect_keyword("IN")
            return Condition(name, "NOT IN", self.literal_list())
        if self.keyword("LIKE"):
            self.i += 1
            lit = self.literal()
            if lit.kind != "string":
                raise SoqlError("LIKE needs a string pattern")
            return Condition(name, "LIKE", (lit,))
        op = self.next("a comparison operator")
        if op.kind != "op":
            raise SoqlError(f"unexpected token {op.text!r} at position {op.pos}, expecting an operator")
        return Condition(name, "!=" if op.text == "<>" else op.text, (self.literal(),))

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        if self.keyword("SELECT"):
            raise SoqlError("semi-join sub-queries are not supported by the emulator")
        values = [self.literal()]
        while self.peek() is not None and self.peek().text == ",":
            self.i += 1
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def literal(self) -> Literal:
        tok = self.next("a value")
        if tok.kind == "str":
            raw = tok.text[1:-1]
            return Literal("string", _unescape(raw), raw)
        if tok.kind == "num":
            return Literal("number", float(tok.text))
        if tok.kind == "date":
            try:
                return Literal("date", date.fromisoformat(tok.text))
            except ValueError as exc:
                raise SoqlError(f"invalid date literal {tok.text!r}") from exc
        if tok.kind == "dt":
            try:
                return Literal("datetime", _parse_datetime(tok.text))
            except ValueError as exc:
                raise SoqlError(f"invalid datetime literal {tok.text!r}") from exc
        if tok.kind == "ident" and tok.text.upper() in ("TRUE", "FALSE"):
            return Literal("boolean", tok.text.upper() == "TRUE")
        if tok.kind == "ident" and tok.text.upper() == "NULL":
            return Literal("null", None)
        if tok.kind == "ident":
            raise SoqlError(f"{tok.text} is not a supported literal (date literals such as TODAY and "
                            "bind variables are not supported by the emulator)")
        raise SoqlError(f"unexpected token {tok.text!r} at position {tok.pos}, expecting a value")


# --- evaluation -------------------------------------------------------------------------------------
# Field types as the describe call reports them; each accepts these literal kinds.
_ACCEPTS = {
    "id": {"string"}, "string": {"string"}, "picklist": {"string"}, "email": {"string"},
    "reference": {"string"}, "double": {"number"}, "boolean": {"boolean"}, "date": {"date"},
    "datetime": {"datetime"},
}


def like_regex(raw: str) -> re.Pattern[str]:
    """SOQL LIKE: % any run, _ one character, \\% and \\_ literal; case-insensitive like Salesforce."""
    out, i = [], 0
    text = _unescape(raw)
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "%_":
            out.append(re.escape(text[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE | re.DOTALL)


def _norm(value: Any) -> Any:
    # Text comparisons in SOQL are case-insensitive.
    return value.casefold() if isinstance(value, str) else value


def compile_where(conditions: list[Condition], types: dict[str, str], sobject: str):
    """Return a predicate record -> bool, after checking every field exists and every literal fits it."""
    tests = []
    for c in conditions:
        ftype = types.get(c.field)
        if ftype is None:
            raise SoqlError(f"No such column '{c.field}' on entity '{sobject}'", "INVALID_FIELD")
        for lit in c.values:
            if lit.kind == "null":
                if c.op not in ("=", "!=", "IN", "NOT IN"):
                    raise SoqlError(f"null can only be compared with = or != (field {c.field})")
            elif lit.kind not in _ACCEPTS[ftype]:
                raise SoqlError(f"value of filter criterion for field '{c.field}' must be of type {ftype} "
                                f"and should not be enclosed in quotes" if lit.kind == "string" else
                                f"value of filter criterion for field '{c.field}' must be of type {ftype}",
                                "INVALID_QUERY_FILTER_OPERATOR")
        if c.op in ("<", "<=", ">", ">=") and ftype == "boolean":
            raise SoqlError(f"operator {c.op} is not valid on boolean field {c.field}",
                            "INVALID_QUERY_FILTER_OPERATOR")
        if c.op == "LIKE" and ftype not in ("string", "picklist", "email", "id", "reference"):
            raise SoqlError(f"LIKE is valid only on text fields, not {c.field} ({ftype})",
                            "INVALID_QUERY_FILTER_OPERATOR")
        tests.append(_compile_one(c))

    def predicate(rec: dict[str, Any]) -> bool:
        return all(t(rec) for t in tests)

    return predicate


def _compile_one(c: Condition):
    name, op = c.field, c.op
    if op == "LIKE":
        rx = like_regex(c.values[0].raw)
        return lambda r: r.get(name) is not None and rx.match(r[name]) is not None
    if op in ("IN", "NOT IN"):
        wanted = {_norm(v.value) for v in c.values}
        if op == "IN":
            return lambda r: _norm(r.get(name)) in wanted
        return lambda r: _norm(r.get(name)) not in wanted
    target = _norm(c.values[0].value)
    if op == "=":
        return lambda r: _norm(r.get(name)) == target
    if op == "!=":
        return lambda r: _norm(r.get(name)) != target
    cmp = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           ">=": lambda a, b: a >= b}[op]
    return lambda r: r.get(name) is not None and cmp(_norm(r[name]), target)


def order_key(fields: list[tuple[str, bool]]):
    """Sort records like Salesforce: nulls first ascending (last descending), text case-insensitive."""
    def sort(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = list(records)
        for name, desc in reversed(fields):
            out.sort(key=lambda r, n=name: (r.get(n) is not None, _norm(r.get(n)) if r.get(n) is not None
                                            else 0), reverse=desc)
        return out
    return sort
