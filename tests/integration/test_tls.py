"""TLS as clients see it: Gunicorn's SSL settings (certfile, keyfile, ca_certs, cert_reqs,
ciphers, ssl_version, do_handshake_on_connect, suppress_ragged_eofs and the ssl_context hook),
the `https`/`wss` scheme and the ASGI `tls` scope extension, WSGI's `wsgi.url_scheme`, and
clients that are not TLS at all.

A throw-away CA made by `trustme` signs the server's and the client's certificates; clients
are httpx, `websockets` and `ssl`-wrapped raw sockets.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import gunicorn.config
import httpx
import pytest
import trustme
from conftest import WORKER_CLASSES
from cryptography import x509
from gunicorn_process import (
    GunicornProcess,
    error_log,
    read_until_close,
    serving,
    worker_pid,
)
from raw_http import RawResponse, ResponseReader
from websockets.asyncio.client import connect

ASGI_APP = "apps.http_behaviour:app"
WSGI_APP = "apps.wsgi_apps:app"
WS_APP = "apps.ws_apps:app"
# The one TLS 1.2 suite the `strict` server allows (RFC 8422: {0xC0, 0x2B}).
STRICT_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
STRICT_CIPHER_ID = 0xC02B
# What must never show in the error log after bad clients.
NOISY = ("[WARNING]", "[ERROR]", "[CRITICAL]", "Traceback")


# -- certificates ---------------------------------------------------------------------------
class Pki:
    """A CA, a server certificate for 127.0.0.1, and a client certificate, on disk."""

    def __init__(self, base: Path) -> None:
        self.ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
        self.server = self.ca.issue_cert("127.0.0.1", "localhost",
                                         key_type=trustme.KeyType.ECDSA)
        self.client = self.ca.issue_cert("client@example.test", common_name="Client, #1",
                                         organization_name="Example+Co",
                                         organization_unit_name="Tests",
                                         key_type=trustme.KeyType.ECDSA)
        self.ca_file = base / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file = base / "server.pem"
        self.key_file = base / "server.key"
        self.server.cert_chain_pems[0].write_to_path(str(self.cert_file))
        for pem in self.server.cert_chain_pems[1:]:
            pem.write_to_path(str(self.cert_file), append=True)
        self.server.private_key_pem.write_to_path(str(self.key_file))

    def client_context(self, *, with_cert: bool = False,
                       maximum: ssl.TLSVersion | None = None,
                       ciphers: str | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if with_cert:
            self.client.configure_cert(ctx)
        if maximum is not None:
            ctx.maximum_version = maximum
        if ciphers is not None:
            ctx.set_ciphers(ciphers)
        return ctx

    def tls_settings(self, **more: object) -> dict[str, object]:
        return {"certfile": str(self.cert_file), "keyfile": str(self.key_file), **more}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def der(pem: str | bytes) -> bytes:
    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    return ssl.PEM_cert_to_DER_cert(text)


# -- servers --------------------------------------------------------------------------------
class TlsGunicorn(GunicornProcess):
    """A gunicorn serving TLS: readiness is a whole TLS request, not a plaintext one."""

    def __init__(self, *args: object, client_context: ssl.SSLContext, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.client_context = client_context

    def tls_connect(self, context: ssl.SSLContext | None = None,
                    timeout: float = 5.0) -> ssl.SSLSocket:
        raw = self.connect(timeout)
        try:
            return (context or self.client_context).wrap_socket(
                raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise

    def _accepts(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.logs()}")
        try:
            with self.tls_connect(timeout=1.0) as s:
                s.sendall(b"GET /__ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                return s.recv(1) != b""
        except OSError:
            return False

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def tls_server(pki: Pki, app: str, worker_class: str, *, client_cert: bool = False,
               config_text: str = "", **settings: object) -> Iterator[TlsGunicorn]:
    yield from serving(TlsGunicorn(  # type: ignore[misc]
        app, worker_class, settings=pki.tls_settings(**settings), config_text=config_text,
        client_context=pki.client_context(with_cert=client_cert)))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def optional(request: pytest.FixtureRequest, pki: Pki) -> Iterator[TlsGunicorn]:
    """ASGI over TLS; a client certificate is asked for (cert_reqs=1) and checked against
    ca_certs, not required."""
    yield from tls_server(pki, ASGI_APP, request.param, ca_certs=str(pki.ca_file),
                          cert_reqs=int(ssl.CERT_OPTIONAL))


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def strict(request: pytest.FixtureRequest, pki: Pki) -> Iterator[TlsGunicorn]:
    """A client certificate is required (cert_reqs=2) and TLS 1.2 has one cipher suite."""
    yield from tls_server(pki, ASGI_APP, request.param, client_cert=True,
                          ca_certs=str(pki.ca_file), cert_reqs=int(ssl.CERT_REQUIRED),
                          ciphers=STRICT_CIPHER)


HOOK = """
def ssl_context(conf, default_ssl_context_factory):
    import ssl
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context
"""


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def hooked(request: pytest.FixtureRequest, pki: Pki) -> Iterator[TlsGunicorn]:
    """The ssl_context hook sets TLS 1.3 as the minimum; the handshake settings are the
    opposite of Gunicorn's defaults; ssl_version is set (deprecated: Gunicorn ignores it)."""
    yield from tls_server(pki, ASGI_APP, request.param, config_text=HOOK,
                          do_handshake_on_connect=True, suppress_ragged_eofs=False,
                          ssl_version="TLSv1_2")


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def wsgi(request: pytest.FixtureRequest, pki: Pki) -> Iterator[TlsGunicorn]:
    yield from tls_server(pki, WSGI_APP, request.param, forwarded_allow_ips="127.0.0.1")


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def websocket(request: pytest.FixtureRequest, pki: Pki) -> Iterator[TlsGunicorn]:
    yield from tls_server(pki, WS_APP, request.param)


def get(server: TlsGunicorn, target: str, context: ssl.SSLContext | None = None,
        *headers: str) -> RawResponse:
    raw = "\r\n".join([f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *headers,
                       "Connection: close"])
    with server.tls_connect(context) as s:
        s.sendall((raw + "\r\n\r\n").encode("latin-1"))
        resp = ResponseReader(s).read_response()
        resp.cipher = s.cipher()  # type: ignore[attr-defined]
        resp.version_name = s.version()  # type: ignore[attr-defined]
    return resp


def scope_over(server: TlsGunicorn, context: ssl.SSLContext | None = None) -> dict:
    resp = get(server, "/scope", context)
    assert resp.status == 200, resp
    scope = json.loads(resp.body)
    scope["_cipher"] = resp.cipher  # type: ignore[attr-defined]
    return scope


def suite_id(cipher_name: str, context: ssl.SSLContext) -> int:
    """The TLS cipher suite number of an OpenSSL cipher name, as the client's OpenSSL has it."""
    ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}
    return ids[cipher_name]


def assert_refused(server: TlsGunicorn, context: ssl.SSLContext) -> None:
    """The handshake fails, or (TLS 1.3: the server judges the client's certificate after
    the client's side of the handshake is done) the first read does: never a response."""
    with pytest.raises((ssl.SSLError, ConnectionError)):  # noqa: SIM117 - the raise spans both
        with server.tls_connect(context) as s:
            s.sendall(b"GET /scope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            if not s.recv(1):
                raise ConnectionResetError("closed without a response")


def assert_quiet(server: GunicornProcess) -> None:
    """Nothing at WARNING or above in the error log, and nothing at all on stderr (where
    asyncio's own logger would write) but Gunicorn's ssl_version deprecation notice."""
    noisy = [line for line in error_log(server).splitlines()
             if any(mark in line for mark in NOISY)]
    assert not noisy, noisy
    stray = [line for line in server.output.read_text(errors="replace").splitlines()
             if line.strip() and "ssl_version` is deprecated" not in line]
    assert not stray, stray


# -- ASGI scope -----------------------------------------------------------------------------
def test_httpx_gets_https_scope(optional: TlsGunicorn, pki: Pki) -> None:
    resp = httpx.get(f"{optional.https}/scope?x=1", verify=pki.client_context(), timeout=5)
    assert resp.status_code == 200
    scope = resp.json()
    assert scope["scheme"] == "https"
    assert scope["query_string"] == "x=1"
    assert scope["server"] == ["127.0.0.1", optional.port]


def test_tls_extension_without_client_certificate(optional: TlsGunicorn, pki: Pki) -> None:
    context = pki.client_context()
    scope = scope_over(optional, context)
    tls = scope["extensions"]["tls"]
    assert set(tls) == {"server_cert", "client_cert_chain", "client_cert_name",
                        "client_cert_error", "tls_version", "cipher_suite"}
    assert der(tls["server_cert"]) == der(pki.server.cert_chain_pems[0].bytes())
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] == 0x0304
    name, protocol, _bits = scope["_cipher"]
    assert protocol == "TLSv1.3"
    assert tls["cipher_suite"] == suite_id(name, context)
    assert scope["_types"]["extensions"] == "dict"


def test_tls_extension_with_client_certificate(optional: TlsGunicorn, pki: Pki) -> None:
    tls = scope_over(optional, pki.client_context(with_cert=True))["extensions"]["tls"]
    client_pem = pki.client.cert_chain_pems[0].bytes()
    assert len(tls["client_cert_chain"]) >= 1
    assert der(tls["client_cert_chain"][0]) == der(client_pem)
    subject = x509.load_pem_x509_certificate(client_pem).subject
    assert tls["client_cert_name"] == subject.rfc4514_string()
    assert "CN=Client\\, #1" in tls["client_cert_name"]  # RFC 4514 escaping
    assert tls["client_cert_error"] is None


def test_tls_extension_is_per_connection(optional: TlsGunicorn, pki: Pki) -> None:
    """Two requests on one keep-alive connection see the same TLS facts; a new connection
    without a client certificate does not see the previous client's."""
    with optional.tls_connect(pki.client_context(with_cert=True)) as s:
        reader = ResponseReader(s)
        docs = []
        for _ in range(2):
            s.sendall(b"GET /scope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            docs.append(json.loads(reader.read_response().body)["extensions"]["tls"])
    assert docs[0] == docs[1] and docs[0]["client_cert_chain"]
    assert scope_over(optional)["extensions"]["tls"]["client_cert_chain"] == []


def test_plaintext_scope_has_no_tls_extension(gunicorn) -> None:  # type: ignore[no-untyped-def]
    server = gunicorn(ASGI_APP)
    resp = httpx.get(f"{server.url}/scope", timeout=5)
    scope = resp.json()
    assert scope["scheme"] == "http"
    assert "tls" not in scope.get("extensions", {})


def test_trusted_scheme_header_can_say_http_over_tls(wsgi: TlsGunicorn) -> None:
    """As in Gunicorn: the scheme starts as https on a TLS socket, and a trusted proxy's
    secure_scheme_headers decide it (X-Forwarded-Proto: http makes it http)."""
    resp = get(wsgi, "/environ", None, "X-Forwarded-Proto: http")
    assert json.loads(resp.body)["wsgi.url_scheme"] == "http"


# -- client certificates, ciphers, versions ---------------------------------------------------
def test_client_certificate_required(strict: TlsGunicorn, pki: Pki) -> None:
    tls = scope_over(strict, pki.client_context(with_cert=True))["extensions"]["tls"]
    assert der(tls["client_cert_chain"][0]) == der(pki.client.cert_chain_pems[0].bytes())


def test_client_without_certificate_refused(strict: TlsGunicorn, pki: Pki) -> None:
    """With TLS 1.3 the client learns of the refusal at its first read: either way it never
    gets a response, and the worker logs nothing at ERROR."""
    pid = worker_pid(strict)
    assert_refused(strict, pki.client_context())
    assert scope_over(strict)["scheme"] == "https"
    assert worker_pid(strict) == pid
    assert_quiet(strict)


def test_client_certificate_from_another_ca_refused(strict: TlsGunicorn, pki: Pki) -> None:
    stranger = trustme.CA().issue_cert("stranger@example.test")
    context = pki.client_context()
    stranger.configure_cert(context)
    assert_refused(strict, context)
    assert_quiet(strict)


def test_ciphers_setting_decides_tls12_suite(strict: TlsGunicorn, pki: Pki) -> None:
    context = pki.client_context(with_cert=True, maximum=ssl.TLSVersion.TLSv1_2)
    scope = scope_over(strict, context)
    tls = scope["extensions"]["tls"]
    assert scope["_cipher"][0] == STRICT_CIPHER
    assert (tls["tls_version"], tls["cipher_suite"]) == (0x0303, STRICT_CIPHER_ID)


def test_cipher_outside_ciphers_setting_refused(strict: TlsGunicorn, pki: Pki) -> None:
    context = pki.client_context(with_cert=True, maximum=ssl.TLSVersion.TLSv1_2,
                                 ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
    with pytest.raises(ssl.SSLError):
        strict.tls_connect(context).close()
    assert_quiet(strict)


def test_ssl_context_hook_sets_minimum_version(hooked: TlsGunicorn, pki: Pki) -> None:
    with pytest.raises(ssl.SSLError):
        hooked.tls_connect(pki.client_context(maximum=ssl.TLSVersion.TLSv1_2)).close()
    assert scope_over(hooked)["extensions"]["tls"]["tls_version"] == 0x0304
    assert_quiet(hooked)


def test_ssl_version_is_ignored_as_in_gunicorn(hooked: TlsGunicorn) -> None:
    """Gunicorn 27 warns that ssl_version is deprecated and ignores it: TLSv1_2 there does
    not stop the hook's TLS 1.3 minimum."""
    assert "ssl_version" in hooked.logs()
    assert get(hooked, "/scope").version_name == "TLSv1.3"  # type: ignore[attr-defined]


def test_ragged_eof_ends_the_connection_quietly(hooked: TlsGunicorn, pki: Pki) -> None:
    """suppress_ragged_eofs=False: a client that drops TCP without close_notify, in the middle
    of a request or between requests, is a disconnect, never an ERROR."""
    for data in (b"GET /scope HTTP/1.1\r\nHost: 1", b""):
        s = hooked.tls_connect()
        if data:
            s.sendall(data)
        raw = socket.socket(fileno=s.detach())  # the TCP socket without the TLS layer
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x00" * 8)
        raw.close()
    assert scope_over(hooked)["scheme"] == "https"
    assert_quiet(hooked)


@pytest.mark.parametrize("protocols", ["h2,h1", "h1,h2", "h1"])
def test_alpn_offers_what_http_protocols_lists(pki: Pki, worker_class: str,
                                               protocols: str) -> None:
    """ALPN offers the protocols `http_protocols` lists, the server's order deciding: `h2`
    first agrees to h2 with a client offering both, `h1` first to http/1.1 (`h1` alone
    offers nothing); a client offering http/1.1 alone (or nothing) is served HTTP/1.1
    either way. Over h2 a real HTTP/2 client gets the app's answer, with the TLS extension
    in its scope."""
    settings = pki.tls_settings(http_protocols=protocols)
    proc = TlsGunicorn(ASGI_APP, worker_class, settings=settings,
                       client_context=pki.client_context())
    first = "h2" if protocols.startswith("h2") else "http/1.1"
    with proc:
        for offered, agreed in ((["h2", "http/1.1"], first), (["http/1.1"], "http/1.1"),
                                (None, None)):
            context = pki.client_context()
            if offered is not None:
                context.set_alpn_protocols(offered)
            with proc.tls_connect(context) as s:
                # With `h1` alone the server takes no part in ALPN (as Gunicorn's workers).
                assert s.selected_alpn_protocol() == (agreed if "h2" in protocols else None)
                if agreed == "h2":
                    continue
                s.sendall(b"GET /scope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                assert ResponseReader(s).read_response().status == 200
        if first == "h2":
            with httpx.Client(http2=True, verify=pki.client_context(),
                              timeout=5.0) as client:
                response = client.get(f"https://127.0.0.1:{proc.port}/scope")
            assert response.http_version == "HTTP/2"
            scope = response.json()
            assert scope["http_version"] == "2"
            assert scope["scheme"] == "https"
            assert "tls" in scope["extensions"]


# Gunicorn 27's proxy_protocol mode for v1; Gunicorn 23's setting is a boolean (v1 only).
PROXY_V1: object = "v1" if hasattr(gunicorn.config, "validate_proxy_protocol") else True


@pytest.mark.parametrize("server_class", ["ours", "sync"])
def test_proxy_header_inside_tls_as_gunicorn(pki: Pki, worker_class: str,
                                             server_class: str) -> None:
    """With TLS and proxy_protocol, the PROXY header is read from the decrypted stream, as
    Gunicorn's workers read it (a header sent before the handshake breaks the handshake in
    both)."""
    proc = TlsGunicorn(WSGI_APP, worker_class if server_class == "ours" else "sync",
                       settings=pki.tls_settings(proxy_protocol=PROXY_V1,
                                                 proxy_allow_ips="127.0.0.1"),
                       client_context=pki.client_context())
    with proc, proc.tls_connect() as s:
        s.sendall(b"PROXY TCP4 192.0.2.1 198.51.100.2 1000 443\r\n"
                  b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        environ = json.loads(ResponseReader(s).read_response().body)
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("192.0.2.1", "1000")
    assert environ["wsgi.url_scheme"] == "https"


# -- bad clients ------------------------------------------------------------------------------
def bad_clients(server: TlsGunicorn) -> list[bytes]:
    """Plaintext HTTP, garbage, a cut-short ClientHello, and a client that says nothing;
    returns what each got back."""
    answers = []
    for data in (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", os.urandom(600),
                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20, b""):
        with server.connect() as s:
            if data:
                s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            answers.append(read_until_close(s, timeout=10))
    return answers


def test_plaintext_and_garbage_on_tls_port_closed_quietly(optional: TlsGunicorn) -> None:
    pid = worker_pid(optional)
    answers = bad_clients(optional)
    # No HTTP answer in plaintext: at most a TLS alert record (content type 21).
    for answer in answers:
        assert answer == b"" or answer[:1] == b"\x15", answer[:40]
    assert scope_over(optional)["scheme"] == "https"
    assert worker_pid(optional) == pid
    assert_quiet(optional)


def test_silent_client_dropped_after_handshake_timeout(pki: Pki, worker_class: str) -> None:
    """A client that connects and never starts its handshake is closed after
    tls_handshake_timeout (0.5 s here), not after asyncio's default of 60 s."""
    proc = TlsGunicorn(ASGI_APP, worker_class, settings=pki.tls_settings(),
                       env={"GAW_TLS_HANDSHAKE_TIMEOUT": "0.5"},
                       client_context=pki.client_context())
    with proc:
        with proc.connect(timeout=10) as s:
            started = time.monotonic()
            assert read_until_close(s, timeout=10) == b""
            assert time.monotonic() - started < 5
        assert_quiet(proc)


# -- WSGI and WebSocket ------------------------------------------------------------------------
def test_wsgi_url_scheme_is_https(wsgi: TlsGunicorn, pki: Pki) -> None:
    resp = httpx.get(f"{wsgi.https}/environ", verify=pki.client_context(), timeout=5)
    environ = resp.json()
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["SERVER_PORT"] == str(wsgi.port)
    assert environ["HTTP_HOST"] == f"127.0.0.1:{wsgi.port}"


def test_websocket_over_tls_has_wss_scope(websocket: TlsGunicorn, pki: Pki) -> None:
    async def scope() -> dict:
        async with connect(f"wss://127.0.0.1:{websocket.port}/scope",
                           ssl=pki.client_context(with_cert=False)) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 5))

    doc = asyncio.run(scope())
    assert doc["scheme"] == "wss"
    assert "websocket.http.response" in doc["extensions"]
    tls = doc["extensions"]["tls"]
    assert tls["tls_version"] == 0x0304
    assert der(tls["server_cert"]) == der(pki.server.cert_chain_pems[0].bytes())


def test_plaintext_websocket_scope_has_no_tls(gunicorn) -> None:  # type: ignore[no-untyped-def]
    server = gunicorn(WS_APP)

    async def scope() -> dict:
        async with connect(f"ws://127.0.0.1:{server.port}/scope") as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 5))

    doc = asyncio.run(scope())
    assert doc["scheme"] == "ws"
    assert "tls" not in doc["extensions"]
