"""Model fields of our own.

JSONTextField keeps a JSON value as its text. A router row carries its whole listRouters item
and its health-check results, kilobytes each, that the console only ever reads back whole
(the detail page, the health-check table): no query looks inside them. As jsonb, PostgreSQL
parses and re-encodes every item on the way in (inserting 10,000 router rows took 0.9 s of
its CPU with that parse, 0.3 s without); as text it only stores (and, out of line,
compresses) the bytes. Reading it back is one orjson parse. What is stored is JSON: the sync
writes what it parsed from the API, and to_python refuses text that does not parse. An
integer beyond 64 bits is stored exactly (json writes it) but reads back as the nearest float
(orjson reads it so); the API sends none.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.db import models


def without_nuls(value: Any) -> Any:
    """The value with NUL characters removed from every string (keys included)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nuls(k): without_nuls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nuls(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """What JSON cannot hold as it is: dates as ISO text, anything else as its str()."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def dumps(value: Any) -> str:
    """JSON text of a value, as PostgreSQL takes it in text and jsonb: no NULs, dates as ISO text.

    orjson's, or json's for what orjson refuses (an integer beyond 64 bits, a lone surrogate,
    a non-str key). The text itself (C speed) says whether any string held a NUL.
    """
    try:
        text = orjson.dumps(value, default=_plain).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        text = json.dumps(value, default=_plain)
    if "\\u0000" in text:
        return dumps(without_nuls(value))
    return text


def loads(text: str | bytes) -> Any:
    """A JSON text's value; json's more lenient parser for what orjson refuses (NaN, Infinity)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class JSONTextField(models.TextField):
    """A JSON value (dict, list, scalar) stored as text: written and read whole, never queried inside."""

    description = "A JSON value stored as text"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        try:
            return loads(value)
        except ValueError:
            # Text that is not JSON (written around the ORM): shown as it is, never a crash.
            return value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str | bytes):
            try:
                return loads(value)
            except ValueError as exc:
                raise ValidationError(f"not JSON: {exc}", code="invalid") from None
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return dumps(value)

    def value_to_string(self, obj: models.Model) -> str:
        return dumps(self.value_from_object(obj))
