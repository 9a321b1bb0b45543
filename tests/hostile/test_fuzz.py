"""Fuzz the ingest server: mutated requests of every dialect and of the send path.

Seeded and bounded: the same requests every run (a failure names the seed and the request),
sent one at a time over real sockets, exactly as built (raw bytes, so headers that are not
UTF-8 and broken escapes reach the server). Mutations: byte flips, huge and absurd numbers,
NULs, lone surrogates, deep nesting, Unicode digits, impossible dates, non-UTF-8 headers,
corrupt or truncated gzip, cuts and duplications, JSON values of the wrong type.

With the database up, no answer may be a 5xx, and every 4xx must be a refusal for
credentials (401, the one carrier with a token) or a 400 naming the quarantine entry that
keeps the request; every kept entry must read back.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import re
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from pipeline.db.engine import Database
from pipeline.ingest import quarantine as store
from pipeline.ingest.captured import read_captured_requests
from tests.hostile.ingest_hostile import CARRIERS, GENERIC, MESSAGE, REFUSAL, SUBMISSION
from tests.ingest import sample_text
from tests.ingest.server_fixtures import live_server, make_settings, quarantine_rows

#: Mutated requests per engine (and so 2x across both).
REQUESTS = 6_000
SEED = 20_261_130
CONCURRENCY = 4
#: Longest query sent (aiohttp answers a request line over 8 KiB itself, outside the app).
MAX_QUERY = 6_000
TOKEN = "fuzz-token-0123456789"
SECURED = {"kannel_secured": {"format": "kannel", "auth": {"type": "token", "secret_env": "K"}}}


@dataclass(frozen=True)
class Req:
    """One request as bytes on the wire (before framing)."""

    name: str
    method: str
    path: str
    query: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    notes: list[str] = field(default_factory=list, compare=False)

    def wire(self) -> bytes:
        target = self.path.encode() + (b"?" + _target_safe(self.query) if self.query else b"")
        lines = [self.method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
        lines += [name + b": " + value for name, value in self.headers]
        if self.body or self.method == "POST":
            lines.append(b"Content-Length: " + str(len(self.body)).encode())
        lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body


_SAFE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%")


def _target_safe(query: bytes) -> bytes:
    """Bytes no request line may carry (blanks, controls, non-ASCII) percent-encoded; the
    rest, broken ``%`` escapes included, as they are."""
    return b"".join(bytes([c]) if c in _SAFE else b"%%%02X" % c for c in query)


def _form(name: str, path: str, text: str) -> Req:
    [captured] = read_captured_requests(text)
    return Req(
        name,
        "POST",
        path,
        headers=((b"Content-Type", b"application/x-www-form-urlencoded"),),
        body=captured.body,
    )


def _json(name: str, path: str, document: object) -> Req:
    body = json.dumps(document).encode() if not isinstance(document, bytes) else document
    return Req(name, "POST", path, headers=((b"Content-Type", b"application/json"),), body=body)


def base_requests() -> list[Req]:
    """Honest requests: the samples of every dialect, and the send path's three routes."""
    kannel = [
        Req(f"kannel-{n}", "GET", "/v1/dlr/kannel", query=urlencode(r.query).encode())
        for n, r in enumerate(read_captured_requests(sample_text("kannel_dlr_requests.txt")))
    ]
    secured = [
        replace(
            r,
            name=r.name.replace("kannel", "secured"),
            path="/v1/dlr/kannel_secured",
            query=r.query + b"&token=" + TOKEN.encode(),
        )
        for r in kannel[:2]
    ]
    smpp_text = sample_text("smpp34_deliver_sm_receipt.txt")
    receipt = re.search(r'short_message="([^"]*)"', smpp_text)
    assert receipt is not None
    vonage = json.loads(sample_text("vonage_sms_dlr.json"))
    return [
        *kannel,
        *secured,
        _form("jasmin", "/v1/dlr/jasmin", sample_text("jasmin_dlr_level2.form")),
        _form("twilio", "/v1/dlr/twilio", sample_text("twilio_status_callback_delivered.form")),
        Req(
            "smpp-pdu",
            "POST",
            "/v1/dlr/smpp",
            headers=((b"Content-Type", b"text/plain"),),
            body=smpp_text.encode(),
        ),
        Req("smpp-query", "GET", "/v1/dlr/smpp", query=urlencode({"receipt": receipt[1]}).encode()),
        _json("infobip", "/v1/dlr/infobip", sample_text("infobip_sms_dlr.json").encode()),
        _json("vonage-json", "/v1/dlr/vonage", vonage),
        Req("vonage-get", "GET", "/v1/dlr/vonage", query=urlencode(vonage).encode()),
        _json("generic", "/v1/dlr/generic", GENERIC),
        _json("generic-array", "/v1/dlr/generic", [GENERIC, {**GENERIC, "status": 1}]),
        _json("messages", "/v1/messages", MESSAGE),
        _json("messages-array", "/v1/messages", [MESSAGE, {**MESSAGE, "id": "m-2"}]),
        _json("submissions", "/v1/submissions", SUBMISSION),
        _json("refusals", "/v1/refusals", REFUSAL),
    ]


HUGE = [
    b"1E+300000", b"1E+99999999", b"-1E+99999999", b"1E-99999999", b"9" * 5000,
    b"1" + b"0" * 4400, b"1.5E+2", b"0.1000000000000000055511", b"-0", b"1e400", b"NaN",
    b"Infinity", b"-Infinity", b"18446744073709551616", b"1" * 39, b"0x10", b"1_000",
    b"1E+" + b"9" * 37, b"1E-" + b"9" * 37,
]  # fmt: skip
UNICODE_DIGITS = ["\u0661", "\u00b2", "\uff11", "\u0967", "\U0001d7ce", "\u2460", "\u06f3"]
BAD_DATES = [
    "0999-06-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00",
    "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2101-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z", "2024-01-01T25:61:61Z", "2024-01-01", "+002024-01-01T00:00:00Z",
    "9901011200", "6801011200", "0000000000", "9912319999", "2401151031+", "240115103199",
]  # fmt: skip
_DIGITS = re.compile(rb"[0-9]+")
_DATE = re.compile(rb"\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?|\b\d{10,12}\b")


class Mutator:
    """Seeded mutations of a request; each returns a new Req and notes what it did."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def mutate(self, req: Req) -> Req:
        operators = [
            self.flip, self.huge_number, self.nul, self.surrogate, self.deep, self.unicode_digits,
            self.bad_date, self.bad_header, self.gzip, self.cut, self.wrong_type,
        ]  # fmt: skip
        out = req
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            out = self.rng.choice(operators)(out)
        if len(_target_safe(out.query)) > MAX_QUERY:
            # aiohttp itself refuses a request line over 8 KiB before any app code runs.
            out = replace(out, query=out.query[: MAX_QUERY // 3], notes=[*out.notes, "clipped"])
        return out

    # -- where to mutate: the body when there is one, else the query --------------------
    def _part(self, req: Req) -> str:
        return "body" if req.body else "query"

    def _set(self, req: Req, part: str, value: bytes, note: str) -> Req:
        return replace(req, **{part: value}, notes=[*req.notes, note])

    def _splice(self, req: Req, insert: bytes, note: str) -> Req:
        part = self._part(req)
        data: bytes = getattr(req, part)
        at = self.rng.randrange(len(data) + 1)
        return self._set(req, part, data[:at] + insert + data[at:], f"{note}@{at}")

    def _replace_match(self, req: Req, pattern: re.Pattern[bytes], new: bytes, note: str) -> Req:
        part = self._part(req)
        data: bytes = getattr(req, part)
        matches = list(pattern.finditer(data))
        if not matches:
            return self._splice(req, new, note)
        m = self.rng.choice(matches)
        return self._set(req, part, data[: m.start()] + new + data[m.end() :], note)

    # -- operators --------------------------------------------------------------------
    def flip(self, req: Req) -> Req:
        part = self._part(req)
        data = bytearray(getattr(req, part))
        for _ in range(self.rng.randint(1, 4)):
            if data:
                data[self.rng.randrange(len(data))] = self.rng.randrange(256)
        return self._set(req, part, bytes(data), "flip")

    def huge_number(self, req: Req) -> Req:
        number = self.rng.choice(HUGE)
        if self._part(req) == "query" or (b"=" in req.body[:80] and not req.body.startswith(b"{")):
            number = number.replace(b"+", b"%2B")
        return self._replace_match(req, _DIGITS, number, f"number {number[:12]!r}")

    def nul(self, req: Req) -> Req:
        insert = self.rng.choice([b"\x00", b"%00", b"\\u0000"])
        return self._splice(req, insert, f"nul {insert!r}")

    def surrogate(self, req: Req) -> Req:
        insert = self.rng.choice([b"\\ud800", b"\\udfff", b"%ED%A0%80", b"\xed\xa0\x80"])
        return self._splice(req, insert, f"surrogate {insert!r}")

    def deep(self, req: Req) -> Req:
        depth = self.rng.choice([17, 40, 200, 999, 1001, 3000])
        opener = self.rng.choice([b"[", b'{"a":'])
        closer = b"]" if opener == b"[" else b"}"
        if req.body.lstrip()[:1] in (b"{", b"["):
            body = opener * depth + req.body + closer * depth
            return self._set(req, "body", body, f"deep {depth}")
        return self._splice(req, b"x=" + opener * depth + b"&", f"deep {depth}")

    def unicode_digits(self, req: Req) -> Req:
        part = self._part(req)
        data: bytes = getattr(req, part)
        digit = self.rng.choice(UNICODE_DIGITS).encode()
        if part == "query" or (req.headers and b"form" in req.headers[0][1]):
            digit = b"".join(b"%%%02X" % c for c in digit)
        out = re.sub(rb"[0-9]", lambda m: digit if self.rng.random() < 0.5 else m.group(0), data)
        return self._set(req, part, out, f"unicode digits {digit!r}")

    def bad_date(self, req: Req) -> Req:
        date = self.rng.choice(BAD_DATES).encode()
        if self._part(req) == "query" or b"form" in b"".join(v for _, v in req.headers):
            date = date.replace(b"+", b"%2B").replace(b":", b"%3A")
        return self._replace_match(req, _DATE, date, f"date {date!r}")

    def bad_header(self, req: Req) -> Req:
        junk = bytes(self.rng.randrange(0x80, 0x100) for _ in range(self.rng.randint(1, 6)))
        kind = self.rng.choice(["extra", "content-type", "token", "authorization", "signature"])
        name = {
            "extra": b"X-Fuzz",
            "content-type": b"Content-Type",
            "token": b"X-Smsrecon-Token",
            "authorization": b"Authorization",
            "signature": b"X-Smsrecon-Signature",
        }[kind]
        headers = tuple(h for h in req.headers if h[0].lower() != name.lower())
        return replace(req, headers=(*headers, (name, b"a" + junk)), notes=[*req.notes, kind])

    def gzip(self, req: Req) -> Req:
        if not req.body:
            return self.flip(req)
        packed = bytearray(gzip.compress(req.body))
        style = self.rng.choice(["ok", "corrupt", "truncated", "garbage"])
        if style == "corrupt":
            for _ in range(3):
                packed[self.rng.randrange(len(packed))] ^= 0xFF
        elif style == "truncated":
            packed = packed[: self.rng.randrange(1, len(packed))]
        elif style == "garbage":
            packed = bytearray(b"\x1f\x8b\x08" + bytes(self.rng.randrange(256) for _ in range(20)))
        headers = (*req.headers, (b"Content-Encoding", b"gzip"))
        return replace(req, body=bytes(packed), headers=headers, notes=[*req.notes, f"gz {style}"])

    def cut(self, req: Req) -> Req:
        part = self._part(req)
        data: bytes = getattr(req, part)
        if not data:
            return req
        a, b = sorted(self.rng.randrange(len(data) + 1) for _ in range(2))
        out = data[:a] + data[b:] if self.rng.random() < 0.5 else data[:b] + data[a:b] + data[b:]
        return self._set(req, part, out, f"cut {a}:{b}")

    def wrong_type(self, req: Req) -> Req:
        if not req.body.lstrip().startswith((b"{", b"[")):
            return self.nul(req)
        value = self.rng.choice(
            [b"null", b"[]", b"{}", b"true", b'"' + b"x" * 300 + b'"', b"-1", b"0", b'""']
        )
        pattern = re.compile(rb'(?<=: )("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null)')
        return self._replace_match(req, pattern, value, f"value {value[:8]!r}")


async def send(port: int, req: Req) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(req.wire())
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def mutated_requests(seed: int, count: int) -> list[Req]:
    mutator = Mutator(seed)
    bases = base_requests()
    return [mutator.mutate(bases[n % len(bases)]) for n in range(count)]


async def test_fuzzed_requests_never_get_a_5xx_and_every_4xx_is_quarantined_or_auth(
    db: Database, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("K", TOKEN)
    requests = mutated_requests(SEED, REQUESTS)
    names = {req.name.split("-")[0] for req in requests}
    assert {*CARRIERS, "secured", "messages", "submissions", "refusals"} <= names
    settings = make_settings({**CARRIERS, **SECURED})
    outcomes: list[tuple[Req, int, bytes]] = []
    async with live_server(settings, db) as client:
        port = client.server.port
        assert port is not None
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(req: Req) -> None:
            async with gate:
                status, body = await send(port, req)
            outcomes.append((req, status, body))

        await asyncio.gather(*(one(req) for req in requests))
        health = await client.get("/healthz")
        assert health.status == 200

    assert len(outcomes) == REQUESTS
    server_errors = [(r.name, r.notes, s) for r, s, _ in outcomes if s >= 500]
    assert server_errors == [], f"seed {SEED}: {len(server_errors)} x 5xx, e.g. {server_errors[:5]}"
    kept: list[int] = []
    unexplained = []
    for req, status, body in outcomes:
        if status == 401 and req.path.endswith("_secured"):
            continue
        if status == 400:
            try:
                answer = json.loads(body)
            except ValueError:
                answer = {}
            if isinstance(answer.get("quarantine_id"), int):
                kept.append(answer["quarantine_id"])
                continue
        if status >= 400:
            unexplained.append((req.name, req.notes, status, body[:120]))
    assert unexplained == [], f"seed {SEED}: {len(unexplained)}, e.g. {unexplained[:5]}"
    assert len(set(kept)) == len(kept)
    rows = quarantine_rows(db)
    assert sorted(row.id for row in rows) == sorted(kept)
    entries = store.entries(db, status=None)
    assert len(entries) == len(kept)
    # The fuzz is not vacuous: the honest shapes still get through, and plenty is refused.
    accepted = sum(1 for _, s, _ in outcomes if s == 200)
    assert accepted > REQUESTS // 20 and len(kept) > REQUESTS // 2
