"""`Http2Head`, header lists in and a head or a refusal out: what RFC 9113 8.2 and 8.3
make malformed (a stream error) and what the shared `HeadPolicy` refuses (an HTTP status),
and the head an app is given (Host from :authority, the body's delimiting)."""

from __future__ import annotations

import pytest

from gunicorn_async_workers.http.errors import HeadersTooLarge, RequestError
from gunicorn_async_workers.http.h2_connection import Http2Head, Malformed
from gunicorn_async_workers.http.parsers import HeadPolicy

Fields = list[tuple[bytes, bytes]]
BASE: Fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/x?y=1"),
                (b":authority", b"example.test")]


class Connection:
    """What Http2Head reads of its connection."""

    def __init__(self, **policy: object) -> None:
        settings: dict[str, object] = {
            "limit_line": 8190, "limit_fields": 100, "limit_field_size": 8190,
            "scheme_headers": {}, "forwarder_headers": frozenset(), "header_map": "refuse"}
        settings.update(policy)
        self.policy = HeadPolicy(**settings)  # type: ignore[arg-type]
        self.trusted = True
        self.scheme = "http"


def head(fields: Fields, ended: bool = True, **policy: object) -> Http2Head:
    return Http2Head(Connection(**policy), fields, ended)  # type: ignore[arg-type]


def test_a_plain_request() -> None:
    got = head([*BASE, (b"accept", b"*/*")])
    assert (got.method, got.target, got.http_version) == ("GET", b"/x?y=1", "2")
    assert got.headers == [(b"accept", b"*/*"), (b"host", b"example.test")]
    assert got.host == b"example.test"
    assert not got.chunked and got.content_length is None


def test_a_body_is_delimited_by_its_length_or_the_stream_end() -> None:
    assert head([*BASE], ended=False).chunked
    with_length = head([*BASE, (b"content-length", b"5")], ended=False)
    assert not with_length.chunked and with_length.content_length == 5


MALFORMED: dict[str, Fields] = {
    "no method": BASE[1:],
    "no path": [f for f in BASE if f[0] != b":path"],
    "empty path": [*BASE[:2], (b":path", b""), BASE[3]],
    "no scheme": [f for f in BASE if f[0] != b":scheme"],
    "unknown pseudo": [*BASE, (b":protocol", b"websocket")],
    "response pseudo": [*BASE, (b":status", b"200")],
    "repeated pseudo": [*BASE, (b":path", b"/again")],
    "pseudo after regular": [*BASE[:3], (b"accept", b"*/*"), BASE[3]],
    "upper-case name": [*BASE, (b"Accept", b"*/*")],
    "colon in a name": [*BASE, (b"x:y", b"1")],
    "empty name": [*BASE, (b"", b"1")],
    "space in a name": [*BASE, (b"x y", b"1")],
    "connection field": [*BASE, (b"connection", b"keep-alive")],
    "transfer-encoding": [*BASE, (b"transfer-encoding", b"chunked")],
    "te other than trailers": [*BASE, (b"te", b"gzip")],
    "CR in a value": [*BASE, (b"x", b"a\rb")],
    "LF in a value": [*BASE, (b"x", b"a\nb")],
    "NUL in a value": [*BASE, (b"x", b"a\0b")],
    "leading blank": [*BASE, (b"x", b" a")],
    "trailing tab": [*BASE, (b"x", b"a\t")],
    "CONNECT with a path": [(b":method", b"CONNECT"), *BASE[1:]],
    "Host differing from :authority": [*BASE, (b"host", b"other.test")],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_is_a_stream_error(case: str) -> None:
    with pytest.raises(Malformed):
        head(MALFORMED[case])


def test_connect_with_authority_alone_is_well_formed() -> None:
    got = head([(b":method", b"CONNECT"), (b":authority", b"example.test:443")])
    assert got.method == "CONNECT"


def test_te_trailers_is_taken() -> None:
    assert head([*BASE, (b"te", b"trailers")]).te_trailers


def test_the_shared_policy_answers_with_a_status() -> None:
    many = [*BASE, *[(b"x-%d" % i, b"v") for i in range(10)]]
    with pytest.raises(HeadersTooLarge):
        head(many, limit_fields=5)
    with pytest.raises(RequestError) as refused:
        head([*BASE, (b"x_y", b"1")])  # an underscore, header_map "refuse"
    assert refused.value.status == 400
    with pytest.raises(RequestError) as large:
        head([*BASE, (b"content-length", b"100")], ended=False, max_body_size=10)
    assert large.value.status == 413
    with pytest.raises(RequestError) as long_path:
        head([*BASE[:2], (b":path", b"/" + b"p" * 200), BASE[3]], limit_line=100)
    assert long_path.value.status == 414
