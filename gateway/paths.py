"""One reading of a request path, decided once: what the gateway routes, authorizes and forwards.

A path that two parties could read two ways is refused (400 `invalid_path`) rather than
guessed at, so the route table, the public-path rules, the rate limits and the service all
see the same path:

- percent-escapes of unreserved characters (`%41`, `%2e`, `%7E`) are decoded: `/%2e%2e/` is `/../`;
- escapes that would change the path's structure or mean something else to the next reader
  are refused: `%2F` (an encoded `/`), `%5C` and a raw `\\` (a separator to some servers),
  `%00` and every other control character, raw or encoded, and `%25` followed by two hex digits
  (double encoding: decoded once more it would be an escape);
- a malformed escape (`%zz`, `%4`) is refused;
- dot segments are resolved (RFC 3986 5.2.4) and a `..` that would climb above the root is
  refused, as is a dot segment with parameters (`..;`, a `..` to some servers); runs of `/` are
  merged into one (`//internal` is `/internal`);
- everything else, non-ASCII UTF-8 included, stays percent-encoded, with upper-case hex.

The result is what is forwarded, byte for byte: the HTTP client must not re-normalize it.
"""

import re

from gateway.errors import GatewayError

_HEX = frozenset(b"0123456789abcdefABCDEF")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters a path may carry literally (RFC 3986 pchar, minus the escape introducer).
_LITERAL = _UNRESERVED | frozenset(b"!$&'()*+,;=:@/")
_REFUSED_ESCAPES = frozenset({0x2F, 0x5C, 0x7F, *range(0x20)})


def _invalid(why: str) -> GatewayError:
    return GatewayError(400, "invalid_path", f"The request path is ambiguous or malformed: {why}")


# Most paths are already normal: plain characters, no escape, no dot segment, no empty segment.
_ALREADY_NORMAL = re.compile(rb"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9\-._~!$&'()*+,=:@]+)*/?")


# The services' servers (gunicorn) refuse a request line over 4,094 bytes with their own HTML page;
# the gateway refuses a longer address first, in the error contract, and the services never see one.
TARGET_MAX_BYTES = 4000


def target_check(path: str, query_string: bytes) -> None:
    """Refuses (414 `uri_too_long`) a path and query too long to forward."""
    if len(path) + len(query_string) + 1 > TARGET_MAX_BYTES:
        raise GatewayError(
            414, "uri_too_long", f"The address is too long: at most {TARGET_MAX_BYTES:,} characters of path and query"
        )


def path_normalize(raw_path: bytes) -> str:
    """The one path the gateway acts on, as an ASCII string with remaining escapes upper-cased."""
    if _ALREADY_NORMAL.fullmatch(raw_path) and raw_path:
        return raw_path.decode("ascii")
    if not raw_path.startswith(b"/"):
        raise _invalid("it must start with /")
    decoded = bytearray()
    index, length = 0, len(raw_path)
    while index < length:
        byte = raw_path[index]
        if byte == 0x25:  # %
            pair = raw_path[index + 1 : index + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise _invalid("a malformed percent-escape")
            value = int(pair, 16)
            if value in _REFUSED_ESCAPES:
                raise _invalid(f"an encoded %{value:02X}")
            if value == 0x25 and raw_path[index + 3 : index + 5] and _is_escape(raw_path[index + 3 : index + 5]):
                raise _invalid("a double-encoded escape")
            if value in _UNRESERVED:
                decoded.append(value)
            else:
                decoded += b"%%%02X" % value
            index += 3
            continue
        if byte == 0x5C:
            raise _invalid("a backslash")
        if byte < 0x20 or byte == 0x7F:
            raise _invalid("a control character")
        if byte in _LITERAL:
            decoded.append(byte)
        else:  # space, quotes, non-ASCII...: kept, but encoded, so the forwarded path is plain ASCII
            decoded += b"%%%02X" % byte
        index += 1
    return _dot_segments_resolve(decoded.decode("ascii"))


def _is_escape(pair: bytes) -> bool:
    return len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX


def _dot_segments_resolve(path: str) -> str:
    segments = path.split("/")[1:]
    # A trailing "", "." or ".." means the path names a directory: keep its trailing slash.
    trailing_slash = segments[-1] in ("", ".", "..")
    kept: list[str] = []
    for segment in segments:
        if ";" in segment and segment.split(";", 1)[0] in (".", ".."):
            # `..;/` is `../` to some servers (path parameters), a name to others.
            raise _invalid("a dot segment with parameters")
        if segment in ("", "."):
            continue
        if segment == "..":
            if not kept:
                raise _invalid("'..' climbs above the root")
            kept.pop()
            continue
        kept.append(segment)
    normalized = "/" + "/".join(kept)
    if trailing_slash and kept:
        normalized += "/"
    return normalized
