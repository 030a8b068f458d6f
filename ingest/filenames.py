"""Decode attachment file names and header text as Chinese mail clients write them.

Township clerks send from 163 webmail, QQ Mail, Foxmail, Outlook and phone apps, and each encodes
non-ASCII text differently. Some use RFC 2047 encoded words, also inside quoted parameters (which
RFC 2047 §5 forbids) and split across several words, even in the middle of a multibyte character.
Others use RFC 2231 parameters with continuations, or raw 8-bit UTF-8 or GBK bytes with no
encoding at all. Labels are wrong too: "gb2312" text often contains GBK-only characters such as 喆,
so every GB label is decoded as GB18030, the superset of both.

The functions here work on the raw header value (``Message.raw_items()``), because the modern
policy's already-decoded header objects replaced undecodable bytes with U+FFFD.
"""

from __future__ import annotations

import codecs
import email.header
import email.message
import logging
import re
import unicodedata
from email.errors import HeaderParseError
from email.message import Message

logger = logging.getLogger(__name__)

# GB2312 and GBK are subsets of GB18030, and clients label GBK text as gb2312.
_GB_LABELS = frozenset({"gb2312", "gbk", "cp936", "euc-cn", "euccn", "x-gbk", "gb_2312-80", "gb18030"})

_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[qQbB]\?[^?\s]*\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_LINE_BREAK = re.compile(r"[\r\n]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Decode bytes with their declared charset, falling back to UTF-8 and then GB18030.

    A wrong or unknown label falls back instead of raising, and the last step decodes with
    ``errors="replace"``, so this function does not raise on any input.
    """
    codec = _codec_name(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            # LookupError: a label such as "base64" names a bytes-to-bytes codec, not a charset.
            logger.debug("charset %s: bytes do not decode, trying UTF-8 and GB18030", charset)

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def header_text(value: object) -> str:
    """Decode a raw header value (Subject, a display name) to plain text.

    Accepts the raw ``str`` the parser stores (8-bit bytes kept as surrogate escapes), ``bytes``,
    or any object with a ``str()``. Encoded words are decoded wherever they appear, and adjacent
    words in one charset are joined before decoding so that a character split across two words
    survives.
    """
    text = _unfold(_raw_to_text(value))
    return _LINE_BREAK.sub(" ", _decode_words(text)).strip()


def attachment_filename(part: Message) -> str | None:
    """Return the decoded file name of a MIME part, or None when it declares none.

    Looks at Content-Disposition ``filename`` first and Content-Type ``name`` second, and in each
    prefers an RFC 2231 value (``filename*=``) over a plain one. Directory parts that some clients
    send (``C:\\Users\\...\\表.xlsx``) and control characters are removed.
    """
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = _raw_header(part, header)
        if raw is None:
            continue

        name = _param_value(raw, param)
        if name:
            return name

    return None


def raw_header(message: Message, name: str) -> str | None:
    """Return the first raw value of header ``name`` as text, 8-bit bytes decoded, or None."""
    raw = _raw_header(message, name)
    if raw is None:
        return None
    return _unfold(_raw_to_text(raw))


def _raw_header(message: Message, name: str) -> object | None:
    # raw_items() yields the values as parsed, before the policy's header classes decode them.
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return value
    return None


def _param_value(raw: object, param: str) -> str | None:
    text = _unfold(_raw_to_text(raw))

    # A throwaway compat32 message reuses the standard library's parameter parser, which joins
    # RFC 2231 continuations (name*0*, name*1*) and unquotes values.
    holder = email.message.Message()
    holder["Content-Type"] = _LINE_BREAK.sub(" ", text)
    params = holder.get_params(header="content-type", failobj=[]) or []

    plain = None
    for key, value in params[1:]:
        if key.lower() != param:
            continue
        if isinstance(value, tuple):
            return _clean_filename(_decode_rfc2231(value))
        if plain is None:
            plain = value

    if plain is None:
        return None
    return _clean_filename(_decode_words(plain))


def _decode_rfc2231(value: tuple[str | None, str | None, str]) -> str:
    charset, _language, text = value
    # decode_params() percent-decodes to a Latin-1 string, one character per byte. Raw 8-bit
    # text mixed into the value is already decoded and cannot go back to bytes, so it stays.
    try:
        data = text.encode("latin-1", errors="surrogateescape")
    except UnicodeEncodeError:
        return text
    return decode_text(data, charset)


def _clean_filename(name: str) -> str | None:
    # Some macOS clients send decomposed (NFD) names, and NFC makes equal names compare equal.
    name = unicodedata.normalize("NFC", _CONTROL.sub("", name))
    name = re.split(r"[\\/]", name)[-1].strip()
    return name or None


def _decode_words(text: str) -> str:
    if "=?" not in text:
        return text

    try:
        chunks = email.header.decode_header(text)
    except HeaderParseError:
        # One malformed word (bad base64) fails the whole header, so decode word by word.
        return _ENCODED_WORD.sub(lambda match: _decode_one_word(match.group()), text)

    return "".join(_decode_chunk(data, charset) for data, charset in chunks)


def _decode_one_word(word: str) -> str:
    try:
        chunks = email.header.decode_header(word)
    except HeaderParseError:
        return word
    return "".join(_decode_chunk(data, charset) for data, charset in chunks)


def _decode_chunk(data: bytes | str, charset: str | None) -> str:
    if isinstance(data, str):
        return data
    if charset is None:
        # decode_header() returns the unencoded text between words as raw-unicode-escape bytes.
        return data.decode("raw-unicode-escape", errors="replace")
    # RFC 2231 §5 allows a language after the charset: =?UTF-8*zh?B?...?=
    return decode_text(data, charset.split("*", 1)[0])


def _codec_name(charset: str | None) -> str | None:
    if not charset:
        return None

    label = charset.strip().strip('"').lower()
    if label in _GB_LABELS:
        return "gb18030"

    try:
        return codecs.lookup(label).name
    except LookupError:
        logger.debug("charset %r: unknown label", charset)
        return None


def _raw_to_text(value: object) -> str:
    if isinstance(value, bytes):
        return decode_text(value)
    text = str(value)

    # The bytes parser keeps each non-ASCII byte as a lone surrogate (surrogateescape), so raw
    # 8-bit names (UTF-8 or GBK, no RFC 2047) are restored to bytes and decoded here.
    if not any("\udc80" <= char <= "\udcff" for char in text):
        return text
    try:
        return decode_text(text.encode("utf-8", errors="surrogateescape"))
    except UnicodeEncodeError:
        return text


def _unfold(text: str) -> str:
    # RFC 5322 §2.2.3: unfolding removes a CRLF that is followed by whitespace.
    return _FOLD.sub("", text)
