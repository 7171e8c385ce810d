"""TLS for our workers: Gunicorn's SSL context, and the ASGI `tls` scope extension.

The context is the one Gunicorn's own workers use (`certfile`, `keyfile`, `ca_certs`,
`cert_reqs`, `ciphers` and the user's `ssl_context` hook), offering HTTP/2 by ALPN when
`http_protocols` asks for h2. `TlsInfo` is built once per
worker; `extension(ssl_object)` is called once per TLS connection, after the handshake, and
gives the dict of the ASGI TLS extension (asgiref `specs/tls.rst`, version 0.2).
"""

from __future__ import annotations

import re
import ssl
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from gunicorn.config import Config

    from .asgi.types import TLSExtension

# TLS protocol version numbers as the TLS RFCs define them (ASGI's `tls_version`).
_TLS_VERSIONS = {"SSLv3": 0x0300, "TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303,
                 "TLSv1.3": 0x0304}
# RFC 4514 section 3: the attribute types with a short name; any other is written as its
# dotted OID. Keys are the long names OpenSSL reports in `getpeercert()`.
_RFC4514_NAMES = {"commonName": "CN", "localityName": "L", "stateOrProvinceName": "ST",
                  "organizationName": "O", "organizationalUnitName": "OU",
                  "countryName": "C", "streetAddress": "STREET", "domainComponent": "DC",
                  "userId": "UID"}
_OIDS = {"emailAddress": "1.2.840.113549.1.9.1", "serialNumber": "2.5.4.5",
         "surname": "2.5.4.4", "title": "2.5.4.12", "businessCategory": "2.5.4.15",
         "postalCode": "2.5.4.17", "name": "2.5.4.41", "givenName": "2.5.4.42",
         "initials": "2.5.4.43", "generationQualifier": "2.5.4.44",
         "dnQualifier": "2.5.4.46", "pseudonym": "2.5.4.65",
         "organizationIdentifier": "2.5.4.97"}
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
# RFC 4514 section 2.4: characters escaped with a backslash anywhere in a value.
_SPECIAL = re.compile(r'([\\"+,;<>])')
# A certificate's `subject` as `getpeercert()` gives it: its RDNs, each a tuple of (attribute
# type, value) pairs (typeshed types every value of that dict as any of its value shapes).
Subject = tuple[tuple[tuple[str, str], ...], ...]


_ALPN = {"h1": "http/1.1", "h2": "h2"}


def server_context(cfg: Config, protocols: tuple[str, ...] = ("h1",)) -> ssl.SSLContext:
    """Gunicorn's SSL context for `cfg` (its `ssl_context` hook included), offering the
    `protocols` (`http_protocols`) by ALPN when HTTP/2 is among them."""
    from gunicorn import sock

    context = sock.ssl_context(cfg)
    if "h2" in protocols:
        # Offered in the order `http_protocols` lists them; a client that offers neither
        # speaks HTTP/1.1.
        context.set_alpn_protocols([_ALPN[name] for name in protocols])
    return context


def escape_rfc4514(value: str) -> str:
    """A DN attribute value escaped as RFC 4514 section 2.4 says."""
    escaped = _SPECIAL.sub(r"\\\1", value).replace("\0", "\\00")
    if escaped[:1] in ("#", " "):
        escaped = "\\" + escaped
    if len(value) > 1 and value.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def rfc4514_name(subject: Subject) -> str:
    """The `subject` of `SSLObject.getpeercert()` (RDNs in certificate order) as an RFC 4514
    string: the last RDN first, multi-valued RDNs joined with '+'."""
    rdns = []
    for rdn in reversed(subject):
        parts = []
        for key, value in rdn:
            name = _RFC4514_NAMES.get(key) or _OIDS.get(key, key)
            parts.append(f"{name}={escape_rfc4514(value)}")
        rdns.append("+".join(parts))
    return ",".join(rdns)


def first_pem_certificate(path: str | None) -> str | None:
    """The first certificate of a PEM file, normalised; None when there is none."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            found = _PEM_CERT.search(f.read())
    except OSError:
        return None
    if found is None:
        return None
    der = ssl.PEM_cert_to_DER_cert(found.group(0).decode("ascii"))
    return ssl.DER_cert_to_PEM_cert(der)


class TlsInfo:
    """What every TLS connection of a worker shares: the server's certificate in PEM and
    the cipher suite numbers of the context's cipher names."""

    __slots__ = ("cipher_ids", "server_cert")

    def __init__(self, context: ssl.SSLContext, certfile: str | None) -> None:
        self.server_cert = first_pem_certificate(certfile)
        # OpenSSL's cipher id carries the two-byte TLS cipher suite in its low 16 bits.
        self.cipher_ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}

    def extension(self, ssl_object: ssl.SSLObject) -> TLSExtension:
        """The ASGI `tls` extension for one connection (after its handshake)."""
        chain: list[str] = []
        name = None
        leaf = ssl_object.getpeercert(binary_form=True)
        if leaf:
            chain.append(ssl.DER_cert_to_PEM_cert(leaf))
            # Python 3.13 also gives what the client sent above its own certificate.
            unverified = getattr(ssl_object, "get_unverified_chain", None)
            if unverified is not None:
                chain.extend(ssl.DER_cert_to_PEM_cert(der) for der in unverified() or ()
                             if der != leaf)
            subject = cast("Subject | None", (ssl_object.getpeercert() or {}).get("subject"))
            if subject:
                name = rfc4514_name(subject)
        cipher = ssl_object.cipher()
        return {
            "server_cert": self.server_cert,
            "client_cert_chain": chain,
            "client_cert_name": name,
            # A certificate that fails verification ends the handshake: never set.
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": self.cipher_ids.get(cipher[0]) if cipher else None,
        }
