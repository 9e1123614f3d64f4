"""What every fuzz test here shares: the input budget, the property check, the mutators.

How inputs are made
-------------------
Hypothesis draws a *base* input from a structure-aware strategy (a valid-ish
frame, message or packet, or raw junk) and an integer seed. :class:`Mutator`,
seeded with it, derives ``per_example - 1`` neighbours of the base (bytes
flipped, spans cut, duplicated or replaced by tricky tokens, lines swapped,
JSON values of the wrong type, ...), and every one of them goes through the
parser. Hypothesis alone costs about a millisecond per example on the CI
machine, far too much for 20,000 inputs per parser in a minute; a seeded
mutation costs microseconds. Failures stay reproducible and shrinkable: the
assertion names the exact input, and Hypothesis shrinks the base and the seed.

The budget
----------
:func:`budget` sizes ``max_examples`` so that each parser gets
:data:`TARGET_INPUTS` inputs under the profile chosen by
``TELCOFLOW_FUZZ_PROFILE`` (``ci``, the default, or ``soak``; the profiles
themselves are registered in ``conftest.py``). :data:`INPUTS` counts what
each parser was really given; the run prints the table at its end.
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import settings
from hypothesis import strategies as st

from telcoflow.protocol.errors import ProtocolError
from telcoflow.protocol.sip.errors import SipError

T = TypeVar("T")
R = TypeVar("R")

PROFILE = os.environ.get("TELCOFLOW_FUZZ_PROFILE", "ci")
#: Inputs each parser gets under each profile.
TARGET_INPUTS = {"ci": 20_000, "soak": 1_000_000}
if PROFILE not in TARGET_INPUTS:
    raise RuntimeError(f"TELCOFLOW_FUZZ_PROFILE={PROFILE!r}: use one of {sorted(TARGET_INPUTS)}")
TARGET = TARGET_INPUTS[PROFILE]
#: CPU seconds one input may cost a parser (typical: 5-500 us). CPU, not wall time, so a
#: loaded machine does not trip it; less the garbage collector's (see gc_cpu).
MAX_CPU_PER_INPUT = 0.2

#: parser name → inputs it was given this run; (parser name, outcome) → count
INPUTS: Counter[str] = Counter()
OUTCOMES: Counter[tuple[str, str]] = Counter()
#: names counted in INPUTS that are not parsers with a target of their own, and what they
#: are: checks of what a parser accepted (the SDP answer to a parsed offer), round trips,
#: one role of a codec
DERIVED: dict[str, str] = {}


_gc_cpu: dict[int, float] = {}    # thread → CPU seconds spent in collections
_gc_started: dict[int, float] = {}


def _on_gc(phase: str, info: dict[str, int]) -> None:
    thread = threading.get_ident()
    if phase == "start":
        _gc_started[thread] = time.thread_time()
    elif thread in _gc_started:
        spent = time.thread_time() - _gc_started.pop(thread)
        _gc_cpu[thread] = _gc_cpu.get(thread, 0.0) + spent


gc.callbacks.append(_on_gc)


def gc_cpu() -> float:
    """CPU seconds the calling thread has spent in the cyclic garbage collector.

    A full collection of a test process's heap costs 50 ms, and hundreds after hours of
    Hypothesis (its example tree grows): charged to whatever allocated last, it would
    make a per-input time bound fail at random.
    """
    return _gc_cpu.get(threading.get_ident(), 0.0)


def budget(per_example: int, share: float = 1.0) -> settings:
    """Settings (the loaded profile's) with enough examples for ``share`` of the target,
    when each example feeds ``per_example`` inputs to each parser it tests."""
    return settings(max_examples=max(1, math.ceil(TARGET * share / per_example)))


def round_trip_budget() -> settings:
    """Round trips check correctness, not robustness: 100 examples each in CI."""
    return settings(max_examples=100 if PROFILE == "ci" else 20_000)


class UndocumentedError(AssertionError):
    """A parser raised something it does not document, or returned the wrong type."""


def _show(data: object, limit: int = 3000) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def expect(name: str, parse: Callable[[T], R], data: T,
           allowed: tuple[type[BaseException], ...] = (),
           returns: type | tuple[type, ...] = object, *, derived: bool = False) -> R | None:
    """``parse(data)``: its result (checked to be ``returns``), or None when it raised one
    of ``allowed`` (checked to be well-formed); anything else fails with the input.
    ``derived``: a check of what a parser accepted, not a parser with a target."""
    INPUTS[name] += 1
    if derived:
        DERIVED[name] = "checks what a parser accepted"
    started, collected = time.thread_time(), gc_cpu()
    try:
        result = parse(data)
    except allowed as exc:
        OUTCOMES[name, "refused"] += 1
        check_error(exc, name, data)
        return None
    except Exception as exc:
        raise UndocumentedError(f"{name} raised {type(exc).__name__}: {exc!s:.300}\n"
                                f"input: {_show(data)}") from exc
    finally:
        spent = time.thread_time() - started - (gc_cpu() - collected)
        if spent > MAX_CPU_PER_INPUT:
            raise UndocumentedError(f"{name} took {spent:.3f} s of CPU for one input\n"
                                    f"input: {_show(data)}")
    if not isinstance(result, returns):
        raise UndocumentedError(f"{name} returned {type(result).__name__}, not {returns}\n"
                                f"input: {_show(data)}")
    OUTCOMES[name, "accepted"] += 1
    return result


def check_error(exc: BaseException, name: str, data: object) -> None:
    """A documented error must be usable: a wire code, a sentence, a SIP status."""
    str(exc)  # must not raise itself
    if isinstance(exc, ProtocolError):
        if not (isinstance(exc.code, str) and exc.code and isinstance(exc.message, str)
                and exc.message):
            raise fail(name, data, f"{type(exc).__name__} without a code or a message")
    if isinstance(exc, SipError) and not (isinstance(exc.status, int)
                                          and 400 <= exc.status <= 699):
        raise fail(name, data, f"{type(exc).__name__} with status {exc.status!r}")


def fail(name: str, data: object, what: str) -> UndocumentedError:
    return UndocumentedError(f"{name}: {what}\ninput: {_show(data)}")


# ── tricky values ───────────────────────────────────────────────────────────

#: Tokens that break parsers: Unicode digits (str.isdigit() but not int()), numbers past
#: int()'s 4300-digit limit, JSON's non-finite numbers, separators, escapes, brackets.
TOKENS: tuple[str, ...] = (
    "", " ", "0", "00", "-0", "-1", "1", "127", "128", "255", "256", "65535", "65536",
    "2147483648", "4294967296", "18446744073709551616", "9" * 4400, "1" * 30,
    "1.5", "1e999", "-1e999", "NaN", "Infinity", "-Infinity", "null", "true", "false",
    "[]", "{}", '""', '"', "'", "\\", "\\u0000", "\\ud800", "%", "%0", "%00", "%zz", "%C3%28",
    "²", "³", "٣", "௫", "¼", "Ⅻ", "\u00a0", "\u2028", "\u2029", "\x85", "\x1c", "\x0b",
    "\x00", "\x7f", "\r", "\n", "\r\n", "\n\n", "\r\n\r\n", "\t", " \t ", "\r\n ",
    ";", ",", ":", "=", "/", "?", "&", "@", "#", "*", "<", ">", "<>", "[", "]", "{", "}",
    "é", "☎", "\U0001f600", "\ufeff", "\ufffd", "A" * 300, "[" * 40, "{" * 40,
    '{"a":' * 40, "]" * 40, "sip:", "tel:", "sips:x@[::1]", "[::1]", "1.2.3.4", "::",
    "0.0.0.0", "SIP/2.0", "SIP/3.0", "z9hG4bK", "Digest", "RTP/AVP", "audio",
)
TOKENS_BYTES: tuple[bytes, ...] = tuple(
    t.encode("utf-8", "surrogatepass") for t in TOKENS) + (
    b"\xff", b"\xfe\xff", b"\xff\xfe", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"\xc0\xaf", b"\x80", b"\x00\x00\x00", b"\xef\xbb\xbf")
INTERESTING_INTS: tuple[int, ...] = (0, 1, 2, 0x7E, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000,
                                     0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
#: Mutants are cut to this: past every size limit a parser checks before parsing (SIP's
#: 16 KB header section, SDP's 16 KB, the planes' 4-16 KB frames), bigger ones only cost.
MAX_MUTANT = 20_000
_CHAR_RANGES = ((0x20, 0x7E), (0x00, 0x1F), (0x80, 0xFF), (0x100, 0xD7FF), (0xE000, 0xFFFD),
                (0x10000, 0x10FFFF))


class Mutator:
    """Seeded, cheap mutations of bytes, text, lines and JSON values."""

    def __init__(self, seed: int, tokens: Sequence[str] = ()) -> None:
        """``tokens``: the format's own tricky values, mixed in with :data:`TOKENS`."""
        self.rng = random.Random(seed)
        self.tokens = TOKENS + tuple(tokens) * max(1, len(TOKENS) // max(1, len(tokens)))

    # -- pieces ------------------------------------------------------------------------
    def char(self, surrogates: bool = False) -> str:
        rng = self.rng
        if surrogates and rng.random() < 0.1:
            return chr(rng.randint(0xD800, 0xDFFF))
        low, high = _CHAR_RANGES[rng.randrange(len(_CHAR_RANGES))]
        return chr(rng.randint(low, high))

    def token(self) -> str:
        return self.rng.choice(self.tokens)

    def _span(self, n: int) -> tuple[int, int]:
        a = self.rng.randint(0, n)
        return a, min(n, a + self.rng.choice((1, 1, 2, 4, 8, 32, 256)))

    # -- bytes -------------------------------------------------------------------------
    def mutate_bytes(self, data: bytes, ops: int | None = None) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        for _ in range(ops or rng.choice((1, 1, 1, 2, 2, 3, 5))):
            op = rng.randrange(10)
            n = len(buf)
            if op == 0 and n:
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
            elif op == 1 and n:
                buf[rng.randrange(n)] = rng.choice((0, 0x7F, 0x80, 0xFF, 0x0A, 0x0D, 0x20,
                                                    rng.randrange(256)))
            elif op == 2:
                at = rng.randint(0, n)
                buf[at:at] = rng.randbytes(rng.choice((1, 2, 4, 16, 100)))
            elif op == 3 and n:
                a, b = self._span(n)
                del buf[a:b]
            elif op == 4 and n:
                a, b = self._span(n)
                at = rng.randint(0, n)
                buf[at:at] = buf[a:b] * rng.choice((1, 2, 10))
            elif op == 5:
                del buf[rng.randint(0, n):]
            elif op == 6:
                at = rng.randint(0, n)
                buf[at:at] = rng.choice(TOKENS_BYTES)
            elif op == 7 and n:
                a, b = self._span(n)
                buf[a:b] = rng.choice(TOKENS_BYTES)
            elif op == 8 and n >= 2:
                width = rng.choice((1, 2, 4, 8))
                at = rng.randrange(n)
                value = rng.choice(INTERESTING_INTS) & ((1 << 8 * width) - 1)
                buf[at:at + width] = value.to_bytes(width, "big")
            else:
                buf += rng.randbytes(rng.choice((1, 3, 20)))
        return bytes(buf[:MAX_MUTANT])

    # -- text --------------------------------------------------------------------------
    def mutate_text(self, text: str, ops: int | None = None, surrogates: bool = False) -> str:
        rng = self.rng
        s = text
        for _ in range(ops or rng.choice((1, 1, 1, 2, 2, 3))):
            op = rng.randrange(8)
            n = len(s)
            a, b = self._span(n)
            if op == 0:
                s = s[:a] + self.token() + s[b:]
            elif op == 1:
                s = s[:a] + self.token() + s[a:]
            elif op == 2:
                s = s[:a] + s[b:]
            elif op == 3:
                s = s[:a] + s[a:b] * rng.choice((2, 3, 50)) + s[b:]
            elif op == 4:
                s = s[:rng.randint(0, n)]
            elif op == 5:
                s = s[:a] + "".join(self.char(surrogates) for _ in range(b - a or 1)) + s[b:]
            elif op == 6:
                s = s[:a] + s[a:b].swapcase() + s[b:]
            else:
                s = s[:a] + s[a:b][::-1] + s[b:]
        return s[:MAX_MUTANT]

    def mutate_lines(self, text: str, ops: int | None = None) -> str:
        """Line-level damage for line formats (SIP, SDP): lines dropped, repeated, swapped,
        folded, a separator-delimited field replaced by a tricky token."""
        rng = self.rng
        ending = "\r\n" if "\r\n" in text else "\n"
        lines = text.split(ending)
        for _ in range(ops or rng.choice((1, 1, 2, 3))):
            n = len(lines)
            i, j = rng.randrange(n), rng.randrange(n)
            op = rng.randrange(8)
            if op == 0 and n > 1:
                del lines[i]
            elif op == 1:
                lines.insert(j, lines[i])
            elif op == 2:
                lines[i], lines[j] = lines[j], lines[i]
            elif op == 3:
                cut = rng.randint(0, len(lines[i]))
                lines[i] = lines[i][:cut] + rng.choice(("\r\n ", "\r\n\t", "\n ")) + lines[i][cut:]
            elif op == 4:
                lines[i] = self.replace_field(lines[i])
            elif op == 5:
                lines.insert(j, self.token() + rng.choice((":", "=", ": ", "")) + self.token())
            elif op == 6:
                lines[i] = lines[i].upper() if rng.random() < 0.5 else lines[i].lower()
            else:
                lines[i] = self.mutate_text(lines[i], 1)
        return rng.choice((ending, ending, "\n", "\r\n")).join(lines)[:MAX_MUTANT]

    def replace_field(self, line: str) -> str:
        """One field of ``line`` (between separators) replaced by a tricky token."""
        rng = self.rng
        cuts = [i for i, c in enumerate(line) if c in " ;:,=/<>@?&\"'"]
        if not cuts:
            return self.token()
        i = rng.randrange(len(cuts))
        start = cuts[i] + 1
        end = cuts[i + 1] if i + 1 < len(cuts) else len(line)
        return line[:start] + self.token() + line[end:]

    # -- JSON --------------------------------------------------------------------------
    def json_value(self, depth: int = 2) -> Any:
        """Any JSON value, weighted to the ones parsers mistake: wrong types, huge and
        non-finite numbers, bool for int, empty and odd strings, deep nesting."""
        rng = self.rng
        kind = rng.randrange(13 if depth > 0 else 11)
        if depth > 0 and rng.random() < 0.03:
            kind = 13
        if kind == 0:
            return None
        if kind == 1:
            return rng.random() < 0.5
        if kind == 2:
            return rng.choice((0, 1, -1, 8000, 16000, 24000, 48000, 20, 2**31, 2**63, -2**63,
                               2**64, 10**30, -(10**30)))
        if kind == 3:
            return rng.choice((0.0, -0.0, 0.5, 8000.0, 1e308, -1e308, math.inf, -math.inf,
                               math.nan, 5e-324))
        if kind == 4:
            return rng.randint(-(10**6), 10**6)
        if kind in (5, 6, 7):
            return self.token()
        if kind == 8:
            return "".join(self.char() for _ in range(rng.randint(0, 6)))
        if kind == 9:
            return rng.choice(("pcm16", "pcmu", "pcma", "mixed", "isolated", "TELCO", "ALL",
                               "call.answer", "1", "#", "inbound", "audio/x-mulaw", "AAAA",
                               "raw/mulaw", "raw/lpcm16", "dtmf", "hangup"))
        if kind == 10:
            return rng.choice(("MZ1", "c1", "r1", "s1", "conv-1", "+15550100"))
        if kind == 11:
            return [self.json_value(depth - 1) for _ in range(rng.randint(0, 3))]
        if kind == 12:
            return {self.token(): self.json_value(depth - 1) for _ in range(rng.randint(0, 3))}
        nested: Any = rng.choice(([], {}, 1))
        for _ in range(rng.choice((31, 32, 33, 100))):
            nested = [nested] if rng.random() < 0.5 else {"a": nested}
        return nested

    def mutate_json(self, obj: Any, keys: Sequence[str] = ()) -> Any:
        """A copy of ``obj`` with one to three values replaced, keys dropped, added or renamed."""
        rng = self.rng
        out = _copy(obj)
        for _ in range(rng.choice((1, 1, 2, 3))):
            container, key = self._pick(out)
            if container is None:
                return self.json_value()
            op = rng.randrange(6)
            if op <= 1:
                container[key] = self.json_value()
            elif op == 2 and isinstance(container, dict):
                del container[key]
            elif op == 3 and isinstance(container, dict):
                new = rng.choice(keys) if keys and rng.random() < 0.7 else self.token()
                container[new] = self.json_value()
            elif op == 4 and isinstance(container, dict):
                container[self.mutate_text(str(key), 1)] = container.pop(key)
            else:
                value = container[key]
                container[key] = [value] if rng.random() < 0.5 else {"value": value}
        return out

    def _pick(self, obj: Any) -> tuple[Any, Any]:
        """A (container, key) inside ``obj``, deeper with some probability."""
        rng = self.rng
        container: Any = None
        key: Any = None
        node = obj
        for _ in range(4):
            if isinstance(node, dict) and node:
                container, key = node, rng.choice(list(node))
            elif isinstance(node, list) and node:
                container, key = node, rng.randrange(len(node))
            else:
                break
            node = container[key]
            if rng.random() < 0.5:
                break
        return container, key

    def encode_json(self, obj: Any) -> str | bytes:
        """``obj`` as a frame: str or bytes, ASCII-escaped or not, sometimes damaged."""
        rng = self.rng
        text = json.dumps(obj, ensure_ascii=rng.random() < 0.3,
                          separators=rng.choice(((",", ":"), (", ", ": "))))
        roll = rng.random()
        if roll < 0.15:
            text = self.mutate_text(text, surrogates=True)
        if rng.random() < 0.5:
            return text
        encoding = rng.choice(("utf-8", "utf-8", "utf-8", "utf-16", "utf-32-le", "latin-1"))
        try:
            return text.encode(encoding, "surrogatepass")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")


def _copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    return obj


# ── strategies shared by several planes ─────────────────────────────────────

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def junk_bytes(max_size: int = 300) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


def junk_text(alphabet: str | None = None, max_size: int = 200) -> st.SearchStrategy[str]:
    if alphabet is None:
        return st.text(max_size=max_size)
    return st.text(alphabet=alphabet, max_size=max_size)

