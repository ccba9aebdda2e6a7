"""How a measurement type becomes a column name of `experiment_measurements`.

The rule (also in README.md):

* A type that is a plain lowercase identifier (``[a-z][a-z0-9_]*``, no ``__``) maps to
  ``measurement_<type>``: ``ph`` -> ``measurement_ph``, as in the original seed table.
* Any other type (``pH-1``, ``temp C``, ``o2%``, quotes, backticks, non-ASCII, ``VOL``) maps to
  ``measurement_<slug>__<hash>``: ``slug`` is the type lowercased with every run of characters
  outside ``[a-z0-9]`` turned into one ``_`` (``type`` if nothing is left), ``hash`` the first 8
  hex digits of the SHA-1 of the exact type. ``pH-1`` -> ``measurement_ph_1__9a1b...``.

Plain names never contain ``__`` and hashed names always do, so the two kinds never collide; two
different types get different hashes. Names depend only on the type itself, so they are stable
from run to run. Names use only ``[a-z0-9_]`` and stay within MySQL's 64-character identifier limit.
"""

from __future__ import annotations

import hashlib
import re

COLUMN_PREFIX = "measurement_"
MYSQL_MAX_IDENTIFIER_LENGTH = 64
_PLAIN_TYPE = re.compile(r"[a-z][a-z0-9_]*")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_HASH_DIGITS = 8
# Room left for the slug once prefix, the "__" separator and the hash are in place.
_MAX_SLUG_LENGTH = MYSQL_MAX_IDENTIFIER_LENGTH - len(COLUMN_PREFIX) - 2 - _HASH_DIGITS


def is_plain_type(measurement_type: str) -> bool:
    """Whether ``measurement_type`` keeps its own name as ``measurement_<type>``: a plain lowercase
    identifier without ``__`` that fits MySQL's identifier limit with the prefix (else it is hashed)."""
    return (
        _PLAIN_TYPE.fullmatch(measurement_type) is not None
        and "__" not in measurement_type
        and len(COLUMN_PREFIX) + len(measurement_type) <= MYSQL_MAX_IDENTIFIER_LENGTH
    )


def column_name_for_type(measurement_type: str) -> str:
    """The column of `experiment_measurements` that holds values of ``measurement_type``."""
    if is_plain_type(measurement_type):
        return COLUMN_PREFIX + measurement_type
    slug = _NOT_SLUG.sub("_", measurement_type.lower()).strip("_")[:_MAX_SLUG_LENGTH].strip("_")
    digest = hashlib.sha1(measurement_type.encode("utf-8")).hexdigest()[:_HASH_DIGITS]
    return f"{COLUMN_PREFIX}{slug or 'type'}__{digest}"
