"""SIP digest authentication headers (protocol/sip/auth.py).

Properties: :func:`parse_challenge` and :func:`parse_credentials` return their
dataclass or raise :class:`DigestError` (400); :meth:`DigestChallenger.verify`
raises only :class:`DigestError` (400, 401/407 as a :class:`DigestChallenge`,
403) for any Authorization value; a challenge and credentials written by
``to_header`` read back equal; the answer :func:`authorization` computes to our
own challenge passes :meth:`~DigestChallenger.verify`.

Inputs: Digest headers with every parameter a peer sends (quoted and bare
values, escapes, repeated and unknown parameters, odd separators), mutated.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telcoflow.protocol.sip.auth import (
    ALGORITHMS,
    Challenge,
    Credentials,
    DigestChallenger,
    authorization,
    parse_challenge,
    parse_credentials,
)
from telcoflow.protocol.sip.errors import DigestChallenge, DigestError

from .fuzzing import DERIVED, INPUTS, Mutator, budget, expect, round_trip_budget, seeds

NOW = 1_000_000.0
CHALLENGER = DigestChallenger("telcoflow", secret=b"k" * 32, algorithms=("MD5", "SHA-256"))
ISSUED = CHALLENGER.nonce(NOW - 10)
PASSWORDS = {"alice": "secret", "é": "pw"}

AUTH_TOKENS = ("Digest", "digest", "Basic", "=", '"', '\\"', ",", ",,", " ,", "auth",
               "auth-int", "auth,auth-int", "MD5", "md5-sess", "SHA-256", "SHA-512", "00000001",
               "0000000g", "true", "stale", "realm", "nonce", "qop", "nc", "cnonce", "uri",
               "response", "username", ISSUED, ISSUED[:-1] + "A", "telcoflow", "alice")
values = st.one_of(st.sampled_from(["telcoflow", "alice", ISSUED, "sip:gw", "auth", "MD5",
                                    "SHA-256", "00000001", "abc", ""]),
                   st.text(max_size=8))
names = st.sampled_from(["username", "realm", "nonce", "uri", "response", "algorithm", "qop",
                         "nc", "cnonce", "opaque", "stale", "domain", "X-Y"])


@st.composite
def digest_headers(draw: st.DrawFn) -> str:
    """A challenge we issue, credentials a UA answers it with (right or wrong password),
    or Digest parameters in any combination, written in the ways peers write them."""
    kind = draw(st.sampled_from(["challenge", "answer", "answer", "params"]))
    if kind == "challenge":
        return draw(st.sampled_from(CHALLENGER.challenges(NOW, stale=draw(st.booleans()))))
    if kind == "answer":
        challenge = draw(st.sampled_from(CHALLENGER.challenges(NOW - 10)))
        return authorization(challenge, "INVITE", draw(st.sampled_from(["sip:gw", "sip:é@h"])),
                             draw(st.sampled_from(sorted(PASSWORDS))),
                             draw(st.sampled_from(["secret", "pw", "wrong"])),
                             draw(st.sampled_from(["0a4f113b", "x"])), draw(st.integers(1, 9)))
    params = []
    for name in draw(st.lists(names, min_size=1, max_size=10, unique=True)):
        value = draw(values)
        if draw(st.booleans()):
            quoted = value.replace("\\", "\\\\").replace('"', '\\"')
            params.append(f'{name}="{quoted}"')
        else:
            params.append(f"{name}={value}")
    sep = draw(st.sampled_from([", ", ",", " , ", ",\r\n "]))
    scheme = draw(st.sampled_from(["Digest", "Digest", "digest", "Basic"]))
    return f"{scheme} {sep.join(params)}"


def lookup(user: str) -> str | None:
    return PASSWORDS.get(user)


def feed(value: str) -> None:
    expect("auth.parse_challenge", parse_challenge, value, (DigestError,), Challenge)
    if expect("auth.parse_credentials", parse_credentials, value, (DigestError,),
              Credentials) is None:
        return  # verify starts with parse_credentials: it would raise the same DigestError
    user = expect("auth.DigestChallenger.verify",
                  lambda v: CHALLENGER.verify(v, "INVITE", lookup, NOW), value,
                  (DigestError, DigestChallenge), str, derived=True)
    if user is not None and user not in PASSWORDS:
        raise AssertionError(f"verify let in {user!r} for {value!r}")


PER_EXAMPLE = 100


@budget(PER_EXAMPLE)
@given(base=digest_headers(), seed=seeds)
def test_digest_headers(base: str, seed: int) -> None:
    mutator = Mutator(seed, AUTH_TOKENS)
    feed(base)
    for _ in range(PER_EXAMPLE - 1):
        feed(mutator.mutate_text(base))


text_values = st.text(max_size=20)


@round_trip_budget()
@given(realm=text_values, nonce=text_values, algorithm=st.sampled_from(ALGORITHMS),
       qop=st.lists(st.sampled_from(["auth", "auth-int"]), max_size=2, unique=True),
       opaque=st.none() | text_values, stale=st.booleans())
def test_challenge_round_trip(realm: str, nonce: str, algorithm: str, qop: list[str],
                              opaque: str | None, stale: bool) -> None:
    INPUTS["auth round trip"] += 1
    DERIVED["auth round trip"] = "round trips"
    challenge = Challenge(realm, nonce, algorithm, tuple(qop), opaque, stale)
    assert parse_challenge(challenge.to_header()) == challenge


@round_trip_budget()
@given(username=text_values, uri=text_values,
       password=text_values, method=st.sampled_from(["INVITE", "REGISTER", "BYE"]),
       algorithm=st.sampled_from(["MD5", "SHA-256"]),
       cnonce=st.text("0123456789abcdef", min_size=1, max_size=16), nc=st.integers(1, 2**32 - 1))
def test_our_answer_to_our_challenge_is_accepted(username: str, uri: str,
                                                 password: str, method: str, algorithm: str,
                                                 cnonce: str, nc: int) -> None:
    INPUTS["auth round trip"] += 1
    DERIVED["auth round trip"] = "round trips"
    challenger = DigestChallenger("gw-realm", secret=b"s" * 32, algorithms=(algorithm,))
    header = authorization(challenger.challenge(NOW), method, uri, username, password,
                           cnonce, nc)
    credentials = parse_credentials(header)
    assert parse_credentials(credentials.to_header()) == credentials
    assert challenger.verify(header, method, lambda u: password if u == username else None,
                             NOW + 1) == username
    # another realm's challenger asks to retry there
    other = DigestChallenger("other-realm", secret=b"t" * 32, algorithms=(algorithm,))
    with pytest.raises(DigestChallenge):
        other.verify(header, method, lambda u: password, NOW)
