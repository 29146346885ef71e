"""TWS API socket protocol, classic text form: framing, handshake and the field codec.

A message is a 4-byte big-endian length followed by NUL-terminated text fields.
The connection opens with ``b"API\\0"`` and one framed ``"vMIN..MAX[ options]"``;
the server answers with one framed ``[server_version, connection_time]``.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime

MAX_FRAME = 16 * 1024 * 1024  # bytes; TWS refuses larger messages
HANDSHAKE_PREFIX = b"API\0"
SERVER_MIN_VERSION = 157  # oldest client version we can speak (ib_async's minimum)
SERVER_MAX_VERSION = 178  # newest, as a TWS 10.30 build reports
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1


class ProtocolError(ValueError):
    """A frame or field that breaks the protocol; the connection that sent it is closed."""


class FieldError(ValueError):
    """A field of the wrong type in an otherwise well-framed request."""


def frame(payload: bytes) -> bytes:
    """Prefix a payload with its 4-byte big-endian length."""
    return struct.pack(">I", len(payload)) + payload


def split_frames(buffer: bytearray) -> list[bytes]:
    """Remove every complete frame from ``buffer`` and return their payloads.

    Raises ProtocolError for a length prefix over ``MAX_FRAME``.
    """
    payloads = []
    while len(buffer) >= 4:
        (size,) = struct.unpack_from(">I", buffer)
        if size > MAX_FRAME:
            raise ProtocolError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
        if len(buffer) < 4 + size:
            break
        payloads.append(bytes(buffer[4 : 4 + size]))
        del buffer[: 4 + size]
    return payloads


def parse_version_range(payload: bytes) -> tuple[int, int]:
    """Parse the client's ``vMIN..MAX`` (or a bare ``vN``) version announcement."""
    text = payload.decode("ascii", errors="replace").strip("\0").split(" ", 1)[0]
    if not text.startswith("v"):
        raise ProtocolError(f"bad version announcement {text!r}")
    low, _, high = text[1:].partition("..")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise ProtocolError(f"bad version announcement {text!r}") from None


def negotiate_version(client_min: int, client_max: int) -> int:
    """The version TWS settles on: the lower of the two maxima, if both sides accept it."""
    version = min(client_max, SERVER_MAX_VERSION)
    if version < max(client_min, SERVER_MIN_VERSION):
        raise ProtocolError(
            f"client versions {client_min}..{client_max} do not overlap "
            f"{SERVER_MIN_VERSION}..{SERVER_MAX_VERSION}"
        )
    return version


def connection_time(moment: datetime) -> str:
    """TWS's connection-time string, e.g. ``20240115 09:30:00 UTC``."""
    return moment.strftime("%Y%m%d %H:%M:%S ") + (moment.tzname() or "UTC")


def encode_field(value) -> str:
    """One value as TWS writes it: None -> empty, bool -> 1/0, NaN -> empty. TWS never sends
    an infinity (ib_async cannot read one back), so a non-finite number is written empty too;
    the gateway refuses such values on the way in, so none should reach here."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))  # "100", not "100.0"; -0.0 becomes "0"
        return repr(value)
    return str(value)


def encode_message(fields) -> bytes:
    """Frame a list of field values as one message."""
    text = "".join(encode_field(f) + "\0" for f in fields)
    return frame(text.encode("utf-8", errors="replace"))


def decode_fields(payload: bytes) -> list[str]:
    """Split a payload into its text fields (the trailing NUL is dropped)."""
    text = payload.decode("utf-8", errors="replace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


class FieldReader:
    """Reads typed fields in order from one request; raises FieldError naming the bad field."""

    __slots__ = ("fields", "pos")

    def __init__(self, fields: list[str], pos: int = 0):
        self.fields = fields
        self.pos = pos

    def _next(self, name: str) -> str:
        if self.pos >= len(self.fields):
            raise FieldError(f"field {name!r} is missing (message has {len(self.fields)} fields)")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def str(self, name: str = "") -> str:
        return self._next(name)

    def int(self, name: str = "", default: int | None = 0) -> int | None:
        raw = self._next(name).strip()
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            try:
                number = float(raw)
            except ValueError:
                raise FieldError(f"field {name!r} must be an integer, got {raw!r}") from None
            if not number.is_integer():
                raise FieldError(f"field {name!r} must be an integer, got {raw!r}") from None
            return int(number)

    def float(self, name: str = "", default: float | None = None) -> float | None:
        raw = self._next(name).strip()
        if raw == "":
            return default
        if raw == "Infinite":
            return math.inf
        try:
            value = float(raw)
        except ValueError:
            raise FieldError(f"field {name!r} must be a number, got {raw!r}") from None
        if math.isnan(value):
            raise FieldError(f"field {name!r} must be a number, got {raw!r}")
        return None if value == UNSET_DOUBLE else value

    def bool(self, name: str = "") -> bool:
        raw = self._next(name).strip()
        if raw in ("", "0", "false", "False"):
            return False
        if raw in ("1", "true", "True"):
            return True
        raise FieldError(f"field {name!r} must be 0 or 1, got {raw!r}")
