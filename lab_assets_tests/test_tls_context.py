"""PyMySQL's "preferred" TLS context (no TLS settings in LAB_DB_URL) is built once per process and
shared by the connections the engine opens, side by side included; TLS settings in the URL get
PyMySQL's own context, verified, per connection (test_tls.py runs them against a TLS-only server)."""

from __future__ import annotations

import ssl
from concurrent.futures import ThreadPoolExecutor

from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.tls import PreferredTlsConnection


def test_connections_without_tls_settings_share_one_context(lab_db):
    mysql = MySQLResource(url=lab_db.url)

    def opened_in_a_worker_thread() -> object:  # as a step's side-by-side computations open theirs
        with mysql.connect() as connection:
            return connection.connection.dbapi_connection

    with mysql.connect() as first, mysql.connect() as second:  # both open: the second is a new connection
        with ThreadPoolExecutor(1) as worker:
            third = worker.submit(opened_in_a_worker_thread).result()  # the pool's third: a new one
        raw = [c.connection.dbapi_connection for c in (first, second)] + [third]
    assert all(isinstance(r, PreferredTlsConnection) for r in raw), raw
    assert len({id(r) for r in raw}) == 3
    assert raw[0].ctx is not None and all(r.ctx is raw[0].ctx for r in raw)  # pyright: ignore[reportAttributeAccessIssue,reportOptionalMemberAccess]


def test_tls_settings_get_their_own_verified_context():
    def context(**settings) -> ssl.SSLContext:
        return PreferredTlsConnection(host="127.0.0.1", user="root", defer_connect=True, **settings).ctx  # pyright: ignore[reportAttributeAccessIssue]

    shared = context()
    assert context() is shared and shared.verify_mode == ssl.CERT_NONE  # preferred, as PyMySQL makes it
    ca = ssl.get_default_verify_paths().cafile
    assert ca is not None, "the test needs the system's CA bundle"
    verified = context(ssl_ca=ca, ssl_verify_cert=True)
    assert verified is not shared and verified.verify_mode == ssl.CERT_REQUIRED
