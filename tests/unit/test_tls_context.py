"""Unit tests of the ASGI TLS extension's pieces: RFC 4514 names from `getpeercert()` subjects
(checked against `cryptography`'s own RFC 4514 writer) and the server certificate's PEM."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gunicorn_async_workers.tls import first_pem_certificate, rfc4514_name

NAMES = {
    "plain": [[(NameOID.COMMON_NAME, "client")]],
    "ordered": [[(NameOID.COUNTRY_NAME, "NL")], [(NameOID.ORGANIZATION_NAME, "Example")],
                [(NameOID.ORGANIZATIONAL_UNIT_NAME, "Web")], [(NameOID.COMMON_NAME, "a b")]],
    "escaped": [[(NameOID.COMMON_NAME, " #lead, +;<>\"\\ trail ")]],
    "multi-valued": [[(NameOID.COMMON_NAME, "x"), (NameOID.USER_ID, "42")]],
    "oids": [[(NameOID.EMAIL_ADDRESS, "me@example.test")], [(NameOID.SERIAL_NUMBER, "7")],
             [(NameOID.GIVEN_NAME, "Ada")], [(NameOID.SURNAME, "L")],
             [(NameOID.DOMAIN_COMPONENT, "test")], [(NameOID.STREET_ADDRESS, "Main 1")],
             [(NameOID.LOCALITY_NAME, "Delft")], [(NameOID.STATE_OR_PROVINCE_NAME, "ZH")]],
}


def certificate(name: x509.Name, path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("case", list(NAMES))
def test_rfc4514_name_as_cryptography_writes_it(case: str, tmp_path: Path) -> None:
    name = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)
                                                      for oid, value in rdn])
                      for rdn in NAMES[case]])
    path = certificate(name, tmp_path / "cert.pem")
    # The dict `SSLObject.getpeercert()` gives, decoded by the same OpenSSL code.
    subject = ssl._ssl._test_decode_cert(str(path))["subject"]  # type: ignore[attr-defined]
    assert rfc4514_name(subject) == name.rfc4514_string()


def test_first_pem_certificate(tmp_path: Path) -> None:
    one = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "one")]),
                      tmp_path / "one.pem").read_text()
    two = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "two")]),
                      tmp_path / "two.pem").read_text()
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
                      + one + two)
    found = first_pem_certificate(str(bundle))
    assert found is not None
    assert ssl.PEM_cert_to_DER_cert(found) == ssl.PEM_cert_to_DER_cert(one)
    assert first_pem_certificate(str(tmp_path / "missing.pem")) is None
    assert first_pem_certificate(None) is None
