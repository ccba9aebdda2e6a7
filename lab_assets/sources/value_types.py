"""The type of ``sample_measurements.value``, which every ``measurement_*`` column of the flat
table takes, read from information_schema and accepted only in a known grammar.

Every column of the flat table carries exactly what the lab stores: a DECIMAL keeps its precision
and scale, DOUBLE and FLOAT their binary values, integers their width and sign, text its
characters. So the SQL that reads, compares and hashes values depends on the type's family:

* **comparisons** (the pivot's MAX of duplicates, the checks' equality and order): numbers in
  their own type (DECIMAL against DECIMAL of one type is exact, as are DOUBLE, FLOAT and integers
  against their own type); text byte-wise, as ``CAST(... AS BINARY)``, so neither the collation
  (``a`` = ``A`` under ``_ci``, ``a`` = ``a `` under PAD SPACE) nor the row order decides MAX;
* **row hashes** (lab_assets.sources.hashes): a number whose tripled value is exact on both servers
  (DECIMAL up to 64 digits, integers, BIGINT through DECIMAL(20,0)) enters the second hash
  tripled, as it always did; anything else (text, DOUBLE, FLOAT, DECIMAL(65,s), whose ``* 3``
  would fail on text, round a DOUBLE or leave 65 digits) enters it as its exact text, read
  reversed with the measurement type. FLOAT is read as DOUBLE (exact), because the servers show
  a FLOAT with 6 digits only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DECIMAL = re.compile(r"(?:decimal|numeric)\((\d{1,2}),(\d{1,2})\)( unsigned)?")
_FLOATING = re.compile(r"(double|real|float)(?:\((\d{1,3}),(\d{1,2})\))?( unsigned)?")
_INTEGER = re.compile(r"(tinyint|smallint|mediumint|int|integer|bigint)(?:\(\d{1,3}\))?( unsigned)?")
_CHARACTERS = re.compile(r"(varchar|char)\((\d{1,5})\)")
_TEXT = re.compile(r"(tinytext|text|mediumtext|longtext)")
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")

INTEGER_BYTES = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "bigint": 8}
# Bytes per character, for the row-size limit; a character set not listed counts 4 (the most any
# has), which can only make the limit smaller than the server's.
CHARACTER_BYTES = {"latin1": 1, "ascii": 1, "binary": 1, "cp1250": 1, "cp1251": 1, "cp1252": 1,
                   "ucs2": 2, "utf8mb3": 3, "utf8": 3, "utf8mb4": 4, "utf16": 4, "utf16le": 4, "utf32": 4}  # fmt: skip

SUPPORTED = (
    "DECIMAL(p,s) up to DECIMAL(65,30), DOUBLE, FLOAT, TINYINT to BIGINT (signed or UNSIGNED),"
    " CHAR(n), VARCHAR(n), TINYTEXT to LONGTEXT"
)


class UnsupportedValueType(ValueError):
    """The value column's type is outside the grammar lab_assets publishes."""


def _decimal_bytes(digits: int) -> int:
    """Storage of ``digits`` decimal digits: 4 bytes per 9, 0-4 for the rest (MySQL's format)."""
    return 4 * (digits // 9) + (0, 1, 1, 2, 2, 3, 3, 4, 4)[digits % 9]


@dataclass(frozen=True)
class ValueType:
    """A supported type of ``sample_measurements.value``. ``ddl`` is the column type as the flat
    table declares it, written from the parsed parts only (never the catalog's text), and is
    also how two types are compared (display widths, which change nothing, are dropped)."""

    family: str  # "decimal", "float", "integer" or "text"
    ddl: str
    # Bytes of one value in InnoDB's row (text: the most it can take), for the column limit.
    row_bytes: int
    # Text: the character set, for converting the byte-wise MAX back to characters.
    character_set: str | None = None
    # DECIMAL: digits in all (decides whether ``* 3`` stays within 65 digits).
    precision: int = 0
    # Text: TINYTEXT..LONGTEXT (always stored off the row when long).
    is_blob: bool = False

    @property
    def is_text(self) -> bool:
        """Whether values are text (compared byte-wise, not as numbers)."""
        return self.family == "text"

    def ordered(self, expression: str) -> str:
        """``expression`` as lab_assets compares and orders values of this type: numbers as they
        are, text byte-wise (so MAX and equality depend neither on collation nor on row order)."""
        return f"CAST({expression} AS BINARY)" if self.is_text else expression

    def from_ordered(self, expression: str) -> str:
        """A MAX of :meth:`ordered` values turned back into a value of this type."""
        return f"CONVERT({expression} USING {self.character_set})" if self.is_text else expression

    def exact_text(self, expression: str) -> str:
        """An expression whose text shows every bit of the value: FLOAT widened to DOUBLE (the
        servers print a FLOAT with 6 significant digits; a DOUBLE's text round-trips), text as its
        bytes (so a row hash never mixes two collations), the rest as it is."""
        if self.ddl.startswith("FLOAT"):
            return f"CAST({expression} AS DOUBLE)"
        return self.ordered(expression)

    def tripled(self, expression: str) -> str | None:
        """``expression`` times 3, exactly and without overflow on both servers, or None where no
        such product exists (text, DOUBLE, FLOAT, DECIMAL(65,s): 66 digits are beyond MySQL 8's
        documented 65)."""
        if self.family == "decimal" and self.precision <= 64:
            return f"{expression} * 3"
        if self.family == "integer":
            # Integer arithmetic is 64-bit: a BIGINT times 3 can overflow (error 1690).
            return f"CAST({expression} AS DECIMAL(20,0)) * 3" if self.ddl.startswith("BIGINT") else f"{expression} * 3"
        return None


def parse_value_type(column_type: str, character_set: str | None = None, collation: str | None = None) -> ValueType:
    """The :class:`ValueType` of a column as information_schema describes it (``column_type``
    such as ``decimal(30,10)``, ``bigint(20) unsigned``, ``varchar(20)``; a text column's
    character set and collation). Anything outside the grammar raises
    :class:`UnsupportedValueType`: the parts that go into DDL are numbers and plain names only."""
    text = column_type.strip().lower()
    if m := _DECIMAL.fullmatch(text):
        precision, scale = int(m[1]), int(m[2])
        if not (1 <= precision <= 65 and 0 <= scale <= 30 and scale <= precision):
            raise UnsupportedValueType(f"DECIMAL({precision},{scale}) is outside DECIMAL(1..65, 0..30)")
        ddl = f"DECIMAL({precision},{scale}){' UNSIGNED' if m[3] else ''}"
        size = _decimal_bytes(precision - scale) + _decimal_bytes(scale)
        return ValueType("decimal", ddl, size, precision=precision)
    if m := _FLOATING.fullmatch(text):
        base = "FLOAT" if m[1] == "float" else "DOUBLE"
        digits = f"({int(m[2])},{int(m[3])})" if m[2] else ""
        return ValueType("float", f"{base}{digits}{' UNSIGNED' if m[4] else ''}", 4 if base == "FLOAT" else 8)
    if m := _INTEGER.fullmatch(text):
        base = "int" if m[1] == "integer" else m[1]
        return ValueType("integer", f"{base.upper()}{' UNSIGNED' if m[2] else ''}", INTEGER_BYTES[base])
    characters = _CHARACTERS.fullmatch(text)
    blob = _TEXT.fullmatch(text)
    if characters or blob:
        for kind, name in (("character set", character_set), ("collation", collation)):
            if name is None or not _NAME.fullmatch(name):
                raise UnsupportedValueType(f"{column_type} with the {kind} {name!r}")
        suffix = f" CHARACTER SET {character_set} COLLATE {collation}"
        width = CHARACTER_BYTES.get(str(character_set).lower(), 4)
        if characters:
            length = int(characters[2])
            return ValueType("text", f"{characters[1].upper()}({length}){suffix}", length * width, str(character_set))
        assert blob is not None
        return ValueType("text", f"{blob[1].upper()}{suffix}", 0, str(character_set), is_blob=True)
    raise UnsupportedValueType(f"{column_type!r} is not one of: {SUPPORTED} (ZEROFILL, BINARY and others are not)")


DEFAULT_VALUE_TYPE = parse_value_type("decimal(16,6)")  # the seed schema's


# --- how many measurement columns one table can hold -------------------------------------------
# Determined experimentally with CREATE TABLE on MariaDB 10.11 (InnoDB, 16 KiB pages, DYNAMIC rows,
# innodb_strict_mode=ON), for the flat table's shape (three INT columns, two of them NULL, n NULL
# measurement columns), and matching MySQL 8's documented rules. Two limits hold at once:
# * InnoDB keeps a row within half a page: 5 bytes of header, 13 of transaction id and roll
#   pointer, one NULL bit per nullable column, 12 bytes of INT, and per measurement column its
#   bytes (fixed types), its longest value plus 1 length byte (CHAR/VARCHAR of at most 255
#   bytes), or 21 bytes (a longer CHAR/VARCHAR or any TEXT, which DYNAMIC rows keep off the row
#   behind a 20-byte pointer): at most 8126 bytes ("Row size too large (> 8126)").
# * The server's row of 65,535 bytes, counting a CHAR/VARCHAR's longest value (plus 1 or 2
#   length bytes for VARCHAR) and a TEXT's length and pointer (9-12 bytes, left out here: they
#   never bind before InnoDB's 21).
# * InnoDB's 1017 columns: 1014 measurement columns beside the three identifying ones.
# Measured limits: DECIMAL(16,6), DOUBLE, BIGINT 996; DECIMAL(30,10) 573; DECIMAL(65,30) 268;
# FLOAT, INT, TINYINT 1014; VARCHAR(10) utf8mb4 196; VARCHAR(255) utf8mb4 64; TEXT 383.
INNODB_ROW_LIMIT = 8126
INNODB_ROW_OVERHEAD = 5 + 13 + 12
SERVER_ROW_LIMIT = 65535
INNODB_MAX_COLUMNS = 1017
OFF_ROW_BYTES = 21


def _innodb_bytes(value_type: ValueType) -> int:
    if value_type.is_blob or (value_type.is_text and value_type.row_bytes > 255):
        return OFF_ROW_BYTES
    if value_type.is_text:
        return value_type.row_bytes + 1
    return value_type.row_bytes


def _server_bytes(value_type: ValueType) -> int:
    if value_type.is_blob:
        return 0
    if value_type.ddl.startswith("VARCHAR"):
        return value_type.row_bytes + (1 if value_type.row_bytes < 256 else 2)
    return value_type.row_bytes


def _fits(value_type: ValueType, count: int) -> bool:
    null_bytes = math.ceil((count + 2) / 8)
    innodb = INNODB_ROW_OVERHEAD + null_bytes + count * _innodb_bytes(value_type)
    server = 12 + null_bytes + count * _server_bytes(value_type)
    return count + 3 <= INNODB_MAX_COLUMNS and innodb <= INNODB_ROW_LIMIT and server <= SERVER_ROW_LIMIT


def max_measurement_columns(value_type: ValueType) -> int:
    """How many measurement columns of ``value_type`` the flat table can have (0 when not even
    one fits)."""
    low, high = 0, INNODB_MAX_COLUMNS
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if _fits(value_type, middle) else (low, middle - 1)
    return low


def declared_type(column_type: str, character_set: str | None, collation: str | None) -> str:
    """A column's type as :attr:`ValueType.ddl`, or its catalog text where it does not parse (which
    then differs from every ``ddl``): how the flat table's columns are compared with the source's."""
    try:
        return parse_value_type(column_type, character_set, collation).ddl
    except UnsupportedValueType:
        return column_type
