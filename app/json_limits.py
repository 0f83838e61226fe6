"""JSON text from clients, decoded with bounded nesting.

`json.loads` recurses once per level and raises RecursionError (not a ValueError) past about
1000 levels, so a deeply nested GET `variables` parameter or WebSocket message escapes the
transports' "not valid JSON" handling as an unexpected exception. `loads` stops at
`MAX_DECODE_DEPTH` levels with a ValueError instead, like the POST body's decoder.

The bound is the transport's, far above what any input needs: each JSON input is bounded
again, tighter and with an error naming the field, by its service
(`app.services.validation.check_json`, 32 levels).
"""

from __future__ import annotations

from typing import Any

import orjson

# orjson refuses documents nested deeper than this (its fixed limit), with JSONDecodeError.
MAX_DECODE_DEPTH = 1024


def loads(raw: str | bytes) -> Any:
    """The value of JSON text, or ValueError (a `json.JSONDecodeError`) for text that is not
    JSON or nests deeper than `MAX_DECODE_DEPTH` levels. Never RecursionError."""
    return orjson.loads(raw)
