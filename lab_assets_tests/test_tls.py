"""lab_assets against a TLS-only MariaDB server (``require_secure_transport=ON``), reached through
LAB_DB_URL's PyMySQL query options as README.md ("Pointing lab_assets at a production lab system",
TLS) documents: ``?ssl_ca=<CA file>&ssl_check_hostname=true``. The certificates are made here with
``cryptography``; the servers are private ones (extra_server.py)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from dagster import Failure, materialize
from sqlalchemy.exc import OperationalError

from lab_assets.defs.assets import LAB_ASSETS
from lab_assets.io_manager import MySQLIOManager
from lab_assets.local_lab import source_schema_statements
from lab_assets.mysql.resource import MySQLResource
from lab_assets_tests.extra_server import HOST, ExtraServer, extra_server
from lab_assets_tests.lab_data import assert_flat_table_is_exact, generate, insert

# Each test's fixtures start at most one server (about 2 s); nothing here should take long.
pytestmark = pytest.mark.timeout(60)

DATABASE = "lab_tls"
USER = "tls"
PASSWORD = "tls-Secret-1"


# --- certificates -------------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # much faster to make than RSA; MariaDB takes it


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """A CA certificate (self-signed) when ``issuer`` is None, else a server certificate it signs."""
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(san or []), critical=False)
        )
    return builder.sign(signing_key, hashes.SHA256())


def _write_pem(path: Path, item: x509.Certificate | ec.EllipticCurvePrivateKey) -> str:
    if isinstance(item, x509.Certificate):
        path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            item.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return str(path)


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA, a server certificate and key it signed for 127.0.0.1 and localhost, a
    second one it signed for other.example only, and an unrelated CA."""

    ca: str
    cert: str
    key: str
    other_host_cert: str
    other_host_key: str
    unrelated_ca: str


def make_certificates(directory: Path) -> Certificates:
    ca_key, unrelated_key, server_key, other_key = _key(), _key(), _key(), _key()
    ca = _certificate("lab_assets test CA", ca_key)
    local = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
    return Certificates(
        ca=_write_pem(directory / "ca.pem", ca),
        cert=_write_pem(directory / "server-cert.pem", _certificate("lab server", server_key, (ca, ca_key), local)),
        key=_write_pem(directory / "server-key.pem", server_key),
        other_host_cert=_write_pem(
            directory / "other-cert.pem",
            _certificate("other.example", other_key, (ca, ca_key), [x509.DNSName("other.example")]),
        ),
        other_host_key=_write_pem(directory / "other-key.pem", other_key),
        unrelated_ca=_write_pem(directory / "unrelated-ca.pem", _certificate("unrelated CA", unrelated_key)),
    )


# --- servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


def _tls_only_server(directory: Path, ca: str, cert: str, key: str):
    """A private server that takes TLS connections only, with lab_assets' account ``tls`` (REQUIRE
    SSL, as a DBA would make it) and a lab database."""
    return extra_server(
        directory, {"ssl_ca": ca, "ssl_cert": cert, "ssl_key": key, "require_secure_transport": "ON"}, timeout=30
    )


def _prepare(server: ExtraServer) -> None:
    # server.connect() passes no ssl options: PyMySQL then negotiates TLS on its own (unverified).
    with server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL")
        cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%'")
        cursor.execute(f"CREATE DATABASE `{DATABASE}`")
        cursor.execute(f"USE `{DATABASE}`")
        for statement in source_schema_statements():
            cursor.execute(statement)
        insert(connection, *generate(1_000))


@pytest.fixture(scope="module")
def tls_server(certificates, tmp_path_factory) -> Iterator[ExtraServer]:
    """Its certificate (for 127.0.0.1 and localhost) is signed by ``certificates.ca``."""
    with _tls_only_server(
        tmp_path_factory.mktemp("tls-server"), certificates.ca, certificates.cert, certificates.key
    ) as server:
        _prepare(server)
        yield server


@pytest.fixture(scope="module")
def other_host_server(certificates, tmp_path_factory) -> Iterator[ExtraServer]:
    """Its certificate is signed by the same CA but names other.example only."""
    with _tls_only_server(
        tmp_path_factory.mktemp("other-host-server"),
        certificates.ca,
        certificates.other_host_cert,
        certificates.other_host_key,
    ) as server:
        _prepare(server)
        yield server


def _url(server: ExtraServer, query: str = "", user: str = USER, password: str = PASSWORD) -> str:
    return f"mysql+pymysql://{user}:{password}@{HOST}:{server.port}/{DATABASE}{query}"


def _verified(ca: str) -> str:
    """README's TLS query: the server's certificate checked against ``ca`` and against the host name."""
    return f"?ssl_ca={urllib.parse.quote(ca, safe='')}&ssl_check_hostname=true"


def _materialize(url: str, raise_on_error: bool = True):
    mysql = MySQLResource(url=url)
    resources = {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}
    return materialize(LAB_ASSETS, resources=resources, raise_on_error=raise_on_error)


def _failure(result) -> str:
    """The first step failure of a run that failed, with its causes."""
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.to_string()


def _connection_error(url: str) -> str:
    """The sentence lab_assets' own connection raises for ``url`` (naming LAB_DB_URL), then the
    driver's error it chains."""
    with pytest.raises(Failure) as raised:
        with MySQLResource(url=url).connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    assert isinstance(raised.value.__cause__, OperationalError)
    assert (raised.value.description or "").startswith("LAB_DB_URL (")
    return f"{raised.value.description}\n{raised.value.__cause__}"


def _cipher(url: str) -> str:
    """The TLS cipher of a lab_assets session on ``url`` as the server sees it ('' if unencrypted)."""
    with MySQLResource(url=url).connect() as connection:
        return connection.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").one()[1]


def _verified_peer(url: str) -> dict:
    """The server certificate a lab_assets session on ``url`` verified, as ``ssl`` reads it; fails
    unless the session checked it against a CA and checks the host name. An encrypted session
    that verified nothing has an empty certificate here."""
    with MySQLResource(url=url).connect() as connection:
        driver_connection = connection.connection.dbapi_connection
        assert isinstance(driver_connection, pymysql.connections.Connection), driver_connection
        context, sock = driver_connection.ctx, driver_connection._sock  # noqa: SLF001 - PyMySQL has no public one
        assert isinstance(sock, ssl.SSLSocket), "the session is encrypted"
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname, (
            context.verify_mode,
            context.check_hostname,
        )
        peer = sock.getpeercert()
        assert peer is not None, "the handshake is done"
        return peer


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.integration
def test_readme_tls_url_builds_the_exact_table_over_a_verified_encrypted_session(tls_server, certificates):
    url = _url(tls_server, _verified(certificates.ca))
    assert _cipher(url), "the server sees an encrypted session"
    peer = _verified_peer(url)
    assert ("IP Address", HOST) in peer["subjectAltName"], peer
    assert dict(name for entry in peer["issuer"] for name in entry)["commonName"] == "lab_assets test CA", peer
    result = _materialize(url)
    assert all(evaluation.passed for evaluation in result.get_asset_check_evaluations())
    # The test's own reading connection is verified the same way (CA and host name).
    context = ssl.create_default_context(cafile=certificates.ca)
    with tls_server.connect(DATABASE, user=USER, password=PASSWORD, ssl=context) as connection:
        assert_flat_table_is_exact(connection)
        with connection.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            assert cursor.fetchone()[1].startswith("TLSv1.")


@pytest.mark.integration
def test_without_tls_the_server_refuses_and_the_build_fails(tls_server, certificates):
    # ssl_disabled=true is the only way to make PyMySQL skip TLS: without any ssl option it
    # negotiates TLS by itself (next test). root@127.0.0.1 has no REQUIRE SSL of its own, so the
    # refusal is the server's require_secure_transport, which MariaDB 10.11 reports as a plain
    # "Access denied" (1045), without naming the transport; the same account over TLS gets in.
    url = _url(tls_server, "?ssl_disabled=true", user="root", password="")
    message = _connection_error(url)
    assert "(1045, \"Access denied for user 'root'@'127.0.0.1'" in message, message
    assert "Access denied for user 'root'" in _failure(_materialize(url, raise_on_error=False))
    assert _cipher(_url(tls_server, _verified(certificates.ca), user="root", password=""))
    # The account made REQUIRE SSL is refused the same way. PyMySQL takes any value of ssl_disabled
    # given in the URL (a string) as true: ssl_disabled=false turns TLS off as well.
    for query in ("?ssl_disabled=true", "?ssl_disabled=false"):
        assert "Access denied for user 'tls'" in _connection_error(_url(tls_server, query)), query


@pytest.mark.integration
def test_without_ssl_options_pymysql_encrypts_but_verifies_nothing(other_host_server):
    # PyMySQL (1.2) negotiates TLS when the server offers it, without checking the certificate: a
    # URL without ssl_ca works against a TLS-only server whose certificate names another host.
    # Encryption only, no protection against a server in the middle: hence README's ssl_ca.
    assert _cipher(_url(other_host_server))


@pytest.mark.integration
def test_a_certificate_from_another_ca_is_refused(tls_server, certificates):
    url = _url(tls_server, _verified(certificates.unrelated_ca))
    assert "certificate verify failed" in _connection_error(url)
    assert "certificate verify failed" in _failure(_materialize(url, raise_on_error=False))


@pytest.mark.integration
def test_a_certificate_for_another_host_is_refused(other_host_server, certificates):
    url = _url(other_host_server, _verified(certificates.ca))
    message = _connection_error(url)
    assert "certificate verify failed" in message and "IP address mismatch" in message, message
    # ssl_ca alone checks the host name too (PyMySQL's default); ssl_check_hostname=false turns it off.
    ca = urllib.parse.quote(certificates.ca, safe="")
    assert "IP address mismatch" in _connection_error(_url(other_host_server, f"?ssl_ca={ca}"))
    assert _cipher(_url(other_host_server, f"?ssl_ca={ca}&ssl_check_hostname=false"))


@pytest.mark.integration
def test_ssl_verify_identity_or_verify_cert_next_to_ssl_ca_loses_the_ca(tls_server, certificates):
    # PyMySQL rebuilds its ssl settings from its own ssl_* arguments when any is given, dropping
    # the ssl_ca SQLAlchemy had moved into them: the server's certificate is then checked against
    # the system's CAs only. README: use ssl_check_hostname instead.
    ca = urllib.parse.quote(certificates.ca, safe="")
    for option in ("ssl_verify_identity=true", "ssl_verify_cert=true"):
        assert "certificate verify failed" in _connection_error(_url(tls_server, f"?ssl_ca={ca}&{option}")), option
