"""PyMySQL connections that build TLS's "preferred" context once per process.

With no TLS settings in ``LAB_DB_URL``, PyMySQL uses TLS where the server offers it, unverified
(its "preferred" mode), and builds a new default SSL context for every connection, loading the
system's CA certificates: 20-50 ms each on a 2-core machine, where a connection without TLS takes
under 1 ms. A refresh opens a dozen connections (the ones a step opens side by side are closed
when returned). :class:`PreferredTlsConnection` builds that context the first time and shares it
(an ``SSLContext`` is meant to be shared); settings given in the URL (a CA to verify, a client
certificate) are PyMySQL's own, unchanged, per connection.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any, ClassVar

import pymysql.connections


class PreferredTlsConnection(pymysql.connections.Connection):
    """PyMySQL's connection, its "preferred" TLS context built once per process."""

    _preferred: ClassVar[ssl.SSLContext | None] = None
    _building: ClassVar[threading.Lock] = threading.Lock()

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if sslp:  # TLS settings (or a context) given: as PyMySQL makes them
            return super()._create_ssl_ctx(sslp)  # pyright: ignore[reportAttributeAccessIssue] (not in the stubs)
        with PreferredTlsConnection._building:
            shared = PreferredTlsConnection._preferred
            if shared is None:
                shared = PreferredTlsConnection._preferred = super()._create_ssl_ctx(sslp)  # pyright: ignore[reportAttributeAccessIssue]
            return shared
