from __future__ import annotations

import hashlib
import hmac

import pytest

from telcoflow.protocol.sip import auth
from telcoflow.protocol.sip.auth import (
    Challenge,
    DigestChallenger,
    authorization,
    digest_response,
    parse_challenge,
    parse_credentials,
)
from telcoflow.protocol.sip.errors import DigestChallenge, DigestError, SipError

# RFC 7616 §3.9.1
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}

def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


USERS = {"alice": "wonder land", "bob": 'pa"ss\\word'}
PASSWORDS = USERS.get
REALM = "gw.example.com"
URI = "sip:+4930123@gw.example.com"


def test_rfc2617_vector() -> None:
    got = digest_response("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life", "GET",
                          "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "auth",
                          "00000001", "0a4f113b")
    assert got == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_rfc7616_vectors_through_the_client(alg: str) -> None:
    header = authorization(RFC7616_CHALLENGE.format(alg=alg), "GET", "/dir/index.html",
                           "Mufasa", "Circle of Life", RFC7616_CNONCE, 1)
    cred = parse_credentials(header)
    assert cred.response == RFC7616_RESPONSES[alg]
    assert (cred.username, cred.realm, cred.uri, cred.qop, cred.nc, cred.cnonce) == (
        "Mufasa", "http-auth@example.org", "/dir/index.html", "auth", "00000001", RFC7616_CNONCE)
    assert cred.algorithm == alg
    assert cred.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert 'response="' + RFC7616_RESPONSES[alg] + '"' in header and "qop=auth," in header


def test_rfc7616_challenge_parsed() -> None:
    ch = parse_challenge(RFC7616_CHALLENGE.format(alg="SHA-256"))
    assert ch == Challenge(realm="http-auth@example.org",
                           nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                           algorithm="SHA-256", qop=("auth", "auth-int"),
                           opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    assert parse_challenge(ch.to_header()) == ch


def test_client_without_qop_uses_the_rfc2069_form() -> None:
    header = authorization('Digest realm="r", nonce="n1"', "INVITE", URI, "alice", "pw",
                           "cn", 1)
    cred = parse_credentials(header)
    assert cred.response == md5(f"{md5('alice:r:pw')}:n1:{md5('INVITE:' + URI)}")
    assert cred.qop is None and cred.nc is None and cred.cnonce is None


def test_client_md5_sess_and_nc_counts() -> None:
    header = authorization('Digest realm="r", nonce="n1", qop="auth", algorithm=MD5-sess',
                           "REGISTER", URI, "alice", "pw", "cn", 0x2A)
    cred = parse_credentials(header)
    ha1 = md5(f"{md5('alice:r:pw')}:n1:cn")
    assert cred.nc == "0000002a"
    assert cred.response == md5(f"{ha1}:n1:0000002a:cn:auth:{md5('REGISTER:' + URI)}")


@pytest.mark.parametrize("challenge, sentence", [
    ('Digest realm="r", nonce="n", qop="auth-int"', "only qop=auth"),
    ('Digest realm="r", nonce="n", algorithm=SHA-512-256', "algorithm 'SHA-512-256'"),
    ('Digest realm="r"', "lacks nonce"),
    ('Basic realm="r"', "'Basic' scheme"),
])
def test_client_refuses_challenges_it_cannot_answer(challenge: str, sentence: str) -> None:
    with pytest.raises(DigestError, match=sentence):
        authorization(challenge, "INVITE", URI, "alice", "pw", "cn", 1)


# ── server ──────────────────────────────────────────────────────────────────

def _challenger(**kw: object) -> DigestChallenger:
    return DigestChallenger(REALM, secret=b"k" * 32, **kw)  # type: ignore[arg-type]


def _answer(challenge: str, user: str = "alice", password: str | None = None,
            method: str = "INVITE", nc: int = 1) -> str:
    pw = USERS[user] if password is None else password
    return authorization(challenge, method, URI, user, pw, "c0ffee", nc)


@pytest.mark.parametrize("algorithms", [("MD5",), ("SHA-256",), ("MD5-sess",),
                                        ("SHA-256-sess",)])
def test_round_trip(algorithms: tuple[str, ...]) -> None:
    ch = _challenger(algorithms=algorithms)
    for user in USERS:
        assert ch.verify(_answer(ch.challenge(100.0), user), "INVITE", PASSWORDS, 101.0) == user


def test_several_challenges_share_one_nonce_and_any_offered_one_verifies() -> None:
    ch = _challenger(algorithms=("SHA-256", "MD5"))
    values = ch.challenges(5.0)
    parsed = [parse_challenge(v) for v in values]
    assert [p.algorithm for p in parsed] == ["SHA-256", "MD5"]
    assert parsed[0].nonce == parsed[1].nonce and parsed[0].qop == ("auth",)
    assert ch.challenge(5.0).startswith('Digest realm="gw.example.com", nonce="')
    for value in values:
        assert ch.verify(_answer(value), "INVITE", PASSWORDS, 6.0) == "alice"


def test_nonce_reused_with_growing_nc_within_ttl() -> None:
    ch = _challenger(nonce_ttl=30.0)
    value = ch.challenge(0.0)
    for nc in range(1, 5):
        assert ch.verify(_answer(value, nc=nc), "INVITE", PASSWORDS, nc * 7.0) == "alice"


def test_stale_nonce_with_right_password_gets_stale_challenge() -> None:
    ch = _challenger(nonce_ttl=30.0)
    old = _answer(ch.challenge(0.0))
    with pytest.raises(DigestChallenge) as info:
        ch.verify(old, "INVITE", PASSWORDS, 31.0)
    err = info.value
    assert err.status == 401 and "31 s old (limit 30 s)" in err.message
    fresh = parse_challenge(err.challenge)
    assert fresh.stale and fresh.realm == REALM
    assert ch.verify(_answer(err.challenge), "INVITE", PASSWORDS, 32.0) == "alice"


def test_stale_nonce_with_wrong_password_is_forbidden_not_stale() -> None:
    ch = _challenger(nonce_ttl=30.0)
    with pytest.raises(DigestError) as info:
        ch.verify(_answer(ch.challenge(0.0), password="guess"), "INVITE", PASSWORDS, 31.0)
    assert info.value.status == 403 and not isinstance(info.value, DigestChallenge)


def _messages_leak_nothing(err: DigestError, user: str, password: str) -> None:
    text = f"{err} {err.message} {err!r}"
    ha1 = md5(f"{user}:{REALM}:{password}")
    assert password not in text and ha1 not in text


def test_wrong_password_is_403_and_leaks_nothing() -> None:
    ch = _challenger()
    with pytest.raises(DigestError) as info:
        ch.verify(_answer(ch.challenge(0.0), password="guess"), "INVITE", PASSWORDS, 1.0)
    assert info.value.status == 403
    assert info.value.message == "wrong digest response for user 'alice'"
    _messages_leak_nothing(info.value, "alice", USERS["alice"])
    cred = parse_credentials(_answer(ch.challenge(0.0)))
    assert cred.response not in info.value.message


def test_unknown_user_is_403() -> None:
    ch = _challenger()
    with pytest.raises(DigestError) as info:
        ch.verify(_answer(ch.challenge(0.0), password="x"), "INVITE", lambda u: None, 1.0)
    assert info.value.status == 403 and info.value.message == "unknown user 'alice'"


def test_response_for_another_method_is_wrong() -> None:
    ch = _challenger()
    with pytest.raises(DigestError) as info:
        ch.verify(_answer(ch.challenge(0.0), method="REGISTER"), "INVITE", PASSWORDS, 1.0)
    assert info.value.status == 403


def test_upper_case_hex_response_is_accepted() -> None:
    ch = _challenger()
    header = _answer(ch.challenge(0.0))
    cred = parse_credentials(header)
    upper = header.replace(cred.response, cred.response.upper())
    assert ch.verify(upper, "INVITE", PASSWORDS, 1.0) == "alice"


def test_response_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", spy)
    ch = _challenger()
    header = _answer(ch.challenge(0.0))
    calls.clear()
    ch.verify(header, "INVITE", PASSWORDS, 1.0)
    response = parse_credentials(header).response.encode()
    assert any(response in pair for pair in calls)  # the response went through compare_digest


@pytest.mark.parametrize("tamper, sentence", [
    (lambda ch, h: h.replace(parse_credentials(h).nonce, "A" * 43), "not issued by this server"),
    (lambda ch, h: h.replace(parse_credentials(h).nonce, "short"), "not issued by this server"),
    (lambda ch, h: h.replace(parse_credentials(h).nonce,
                             DigestChallenger(REALM, secret=b"other").nonce(0.0)),
     "not issued by this server"),
    (lambda ch, h: h.replace(f'realm="{REALM}"', 'realm="elsewhere"'),
     "realm 'elsewhere', not 'gw.example.com'"),
    (lambda ch, h: h.replace("algorithm=MD5", "algorithm=SHA-256"),
     "algorithm 'SHA-256' was not offered"),
])
def test_retry_with_a_fresh_challenge(tamper, sentence) -> None:  # type: ignore[no-untyped-def]
    ch = _challenger()
    header = tamper(ch, _answer(ch.challenge(0.0)))
    with pytest.raises(DigestChallenge, match=sentence) as info:
        ch.verify(header, "INVITE", PASSWORDS, 1.0)
    assert info.value.status == 401
    assert not parse_challenge(info.value.challenge).stale


def test_nonce_from_the_future_is_not_ours() -> None:
    ch = _challenger()
    header = _answer(ch.challenge(100.0))
    with pytest.raises(DigestChallenge):
        ch.verify(header, "INVITE", PASSWORDS, 10.0)


def test_proxy_challenges_with_407() -> None:
    ch = _challenger(proxy=True)
    assert ch.status == 407
    with pytest.raises(DigestChallenge) as info:
        ch.verify(_answer(ch.challenge(0.0)), "INVITE", PASSWORDS, 1000.0)
    assert info.value.status == 407


GOOD = ('Digest username="alice", realm="gw.example.com", nonce="n", uri="sip:x", '
        'response="0123", qop=auth, nc=00000001, cnonce="c"')


@pytest.mark.parametrize("header, sentence", [
    ("Basic YWxpY2U6cHc=", "'Basic' scheme; only Digest"),
    ("", "'' scheme"),
    ('Digest username="alice", realm="r"', "lacks nonce, uri, response"),
    (GOOD.replace('cnonce="c"', 'cnonce="c'), "unterminated quoted string"),
    (GOOD.replace("nc=00000001", "nc=1"), "nc must be 8 hex digits"),
    (GOOD.replace(', cnonce="c"', ""), "without nc and cnonce"),
    (GOOD.replace(", qop=auth, nc=00000001", ""), "RFC 2069 form"),
    (GOOD.replace("qop=auth", "qop=auth-int"), "qop 'auth-int' is not supported"),
    (GOOD + ', uri="again"', "repeats the parameter 'uri'"),
    (GOOD.replace("qop=auth", "qop auth"), "has no '=value'"),
    (GOOD.replace("qop=auth", "qop="), "has no value"),
    (GOOD.replace(", qop", " qop"), "not followed by ','"),
    ("Digest =x", "malformed parameter"),
])
def test_malformed_credentials_are_400(header: str, sentence: str) -> None:
    ch = _challenger()
    with pytest.raises(DigestError, match=sentence) as info:
        ch.verify(header, "INVITE", PASSWORDS, 0.0)
    assert info.value.status == 400 and not isinstance(info.value, DigestChallenge)
    assert isinstance(info.value, SipError)


def test_quoted_strings_round_trip_escapes() -> None:
    cred = parse_credentials(_answer('Digest realm="r", nonce="n", qop="auth"', "bob"))
    assert cred.username == "bob"
    header = auth.Credentials(username='we"ird\\name', realm="r", nonce="n", uri="u",
                              response="00").to_header()
    assert parse_credentials(header).username == 'we"ird\\name'


def test_long_user_names_are_bounded_in_messages() -> None:
    ch = _challenger()
    name = "x" * 500
    header = auth.Credentials(name, REALM, ch.nonce(0.0), URI, "00", None, "auth", "00000001",
                              "c").to_header()
    with pytest.raises(DigestError) as info:
        ch.verify(header, "INVITE", lambda u: None, 1.0)
    assert len(info.value.message) < 100


@pytest.mark.parametrize("kwargs", [{"realm": ""}, {"realm": 'a"b'},
                                    {"realm": "r", "algorithms": ("SHA-1",)},
                                    {"realm": "r", "algorithms": ()},
                                    {"realm": "r", "nonce_ttl": 0}])
def test_bad_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DigestChallenger(**kwargs)  # type: ignore[arg-type]


def test_nonces_are_unique_and_opaque() -> None:
    ch = DigestChallenger(REALM)
    nonces = {ch.nonce(1.0) for _ in range(100)}
    assert len(nonces) == 100 and all(len(n) == 43 for n in nonces)
