"""Classification of an attachment by its bytes, with the file name only as a tie-breaker.

Clerks send the weekly table as .xlsx or .docx, but also as Excel 97 .xls, Word 97 .doc, WPS
.et and .wps files, CSV, web pages, PDF printouts, phone photos, zipped or RAR-ed copies and
forwarded mails, often under a wrong or missing extension (phone mail apps send
``application/octet-stream``, and web systems export CSV or HTML under an .xls name). The
pipeline picks a reader, a converter or a reason to reply from the kind returned here.
"""

import io
import logging
import re
import struct
import zipfile
from pathlib import PurePosixPath

from xlrd.compdoc import CompDoc, CompDocError

logger = logging.getLogger(__name__)

KINDS = frozenset({
    "xlsx", "xlsm", "docx", "xls", "doc", "wps", "et", "csv", "html", "zip", "rar", "7z", "pdf",
    "image", "eml", "encrypted", "unknown",
})

# Signatures that start each format. An OLE2 compound file contains .xls, .doc, .et and .wps alike.
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_RAR = b"Rar!\x1a\x07"
_SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c"

_SHEET_NAMES = {".xls", ".xlt", ".et", ".ett"}
_WORD_NAMES = {".doc", ".dot"}
_WPS_NAMES = {".wps", ".wpt"}
_ET_NAMES = {".et", ".ett"}
# Names under which a text file is taken for a table: clerks' CSV, and web systems' exports.
_TEXT_TABLE_NAMES = {".csv", ".txt", ".tsv", ".xls", ".xlsx", ".et"}

# OOXML files protected by a password are OLE2 containers holding these streams (MS-OFFCRYPTO 2.3.4).
_OOXML_ENCRYPTION = {"EncryptionInfo", "EncryptedPackage"}

# BIFF record types (MS-XLS 2.3). In an encrypted workbook, FILEPASS follows the BOF record within
# a few records. Record headers stay readable in an encrypted stream.
_BIFF_FILEPASS = 0x002F
_BIFF_RECORDS_SCANNED = 16

# Exceptions that zipfile raises for a damaged archive: a central directory with an unknown
# version needed, or a name flagged UTF-8 that is not, ends in NotImplementedError or ValueError.
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, NotImplementedError)

# Exceptions that xlrd's compound document parser raises for damaged containers. It checks some
# structures with assert statements and walks the directory tree recursively, so a cyclic tree
# ends in RecursionError.
_OLE2_ERRORS = (CompDocError, struct.error, IndexError, KeyError, ValueError, AssertionError, RecursionError)

# MS-DOC 2.5.2 FibBase: bit fEncrypted of the flags word at offset 10 of the WordDocument stream.
_FIB_ENCRYPTED = 0x0100

_HEADER_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:[ \t]")
_MAIL_HEADERS = (b"from:", b"message-id:", b"mime-version:", b"received:", b"return-path:")


def sniff_kind(data: bytes, filename: str | None) -> str:
    """Return the kind of an attachment, one of :data:`KINDS`.

    "encrypted" is a password-protected Office file: OOXML encryption, or an .xls or .doc
    whose header marks it encrypted.
    """
    suffix = PurePosixPath(filename or "").suffix.lower()

    if data.startswith(_ZIP):
        return _zip_kind(data, suffix)
    if data.startswith(_OLE2):
        return _ole2_kind(data, suffix)
    if data.startswith(b"%PDF"):
        return "pdf"
    if data.startswith(_IMAGES) or _is_riff_webp(data) or _is_heic(data):
        return "image"
    if data.startswith(_RAR):
        return "rar"
    if data.startswith(_SEVEN_ZIP):
        return "7z"
    return _text_kind(data, suffix)


def _zip_kind(data: bytes, suffix: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except _ZIP_ERRORS as err:
        # A truncated .xlsx still starts with PK: let its reader report it as damaged.
        logger.info("sniff: unreadable ZIP (%s), going by the name %r", err, suffix)
        return {".xlsx": "xlsx", ".docx": "docx", ".xlsm": "xlsm"}.get(suffix, "zip")

    if "xl/workbook.xml" in names:
        return "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
    if "word/document.xml" in names:
        return "docx"
    if "mimetype" in names and "content.xml" in names:
        # An OpenDocument file (.ods, .odt): no reader, and not an archive of files either.
        return "unknown"
    return "zip"


def _ole2_kind(data: bytes, suffix: str) -> str:
    try:
        document = CompDoc(data, logfile=io.StringIO(), ignore_workbook_corruption=True)
        streams = {entry.name for entry in document.dirlist}
    except _OLE2_ERRORS as err:
        logger.info("sniff: damaged OLE2 container (%s), going by the name %r", err, suffix)
        return _ole2_kind_by_name(suffix)

    if _OOXML_ENCRYPTION <= streams:
        return "encrypted"

    workbook = next((name for name in ("Workbook", "Book") if name in streams), None)
    if workbook is not None:
        # WPS .et files carry a BIFF8 workbook too, which the .xls reader reads directly.
        return "encrypted" if _biff_encrypted(document, workbook) else "xls"

    if "WordDocument" in streams:
        if _word_encrypted(document):
            return "encrypted"
        return "wps" if suffix in _WPS_NAMES else "doc"

    return _ole2_kind_by_name(suffix)


def _ole2_kind_by_name(suffix: str) -> str:
    if suffix in _ET_NAMES:
        return "et"
    if suffix in _WPS_NAMES:
        return "wps"
    if suffix in _SHEET_NAMES:
        return "xls"
    if suffix in _WORD_NAMES:
        return "doc"
    return "unknown"


def _biff_encrypted(document: CompDoc, name: str) -> bool:
    try:
        memory, position, size = document.locate_named_stream(name)
    except _OLE2_ERRORS as err:
        logger.info("sniff: cannot locate the %s stream: %s", name, err)
        return False
    if memory is None:
        return False

    end = min(position + size, len(memory))
    for _ in range(_BIFF_RECORDS_SCANNED):
        if position + 4 > end:
            return False
        record, length = struct.unpack_from("<HH", memory, position)
        if record == _BIFF_FILEPASS:
            return True
        position += 4 + length
    return False


def _word_encrypted(document: CompDoc) -> bool:
    try:
        stream = document.get_named_stream("WordDocument")
    except _OLE2_ERRORS as err:
        logger.info("sniff: cannot read the WordDocument stream: %s", err)
        return False
    if stream is None or len(stream) < 12:
        return False
    (flags,) = struct.unpack_from("<H", stream, 10)
    return bool(flags & _FIB_ENCRYPTED)


def _is_riff_webp(data: bytes) -> bool:
    return data.startswith(b"RIFF") and data[8:12] == b"WEBP"


def _is_heic(data: bytes) -> bool:
    # ISO base media file: a box size, then "ftyp" and the brand (iPhone photos are HEIC).
    return data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"mif1", b"heim"}


def _text_kind(data: bytes, suffix: str) -> str:
    head = data[:4096]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()

    # A mail's header block comes first, so a forwarded mail with an HTML body is still a mail.
    if _looks_like_mail(head) or (suffix == ".eml" and not text.startswith(b"<")):
        return "eml"
    # Excel and WPS "save as web page" write HTML, often under a .xls name.
    if text.startswith((b"<!doctype html", b"<html")) or b"<table" in text:
        return "html"
    if suffix in _TEXT_TABLE_NAMES and _looks_like_delimited_text(head):
        return "csv"
    return "unknown"


def _looks_like_mail(head: bytes) -> bool:
    """Return True when the bytes start with an RFC 5322 header block naming a mail field."""
    header, separator, _ = head.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = header.split(b"\n")
    if not separator:
        # Long Received chains push the blank line past the bytes looked at; the last line may
        # be cut short.
        lines = lines[:-1]
    lines = [line for line in lines if line and not line[:1].isspace()]
    if len(lines) < 2 or not all(_HEADER_LINE.match(line) for line in lines):
        return False
    return any(line.lower().startswith(_MAIL_HEADERS) for line in lines)


def _looks_like_delimited_text(head: bytes) -> bool:
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    return b"," in head or b"\t" in head or head.startswith((b"\xff\xfe", b"\xfe\xff"))
