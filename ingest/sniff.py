"""Classification of an attachment by its bytes, with the file name only as a tie-breaker.

Clerks send the weekly table as .xlsx or .docx, but also as Excel 97 .xls, Word 97 .doc, PDF
printouts, phone photos and zipped or RAR-ed copies, often under a wrong or missing extension
(phone mail apps send ``application/octet-stream``). The pipeline picks a reader, or a reason to
reply, from the kind returned here.
"""

import io
import logging
import zipfile
from pathlib import PurePosixPath

from xlrd.compdoc import CompDoc, CompDocError

logger = logging.getLogger(__name__)

# Signatures that start each format. An OLE2 compound file contains .xls, .doc, .et and .wps alike.
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_RAR = b"Rar!\x1a\x07"
_SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c"

_XLS_NAMES = {".xls", ".et", ".xlt"}
_DOC_NAMES = {".doc", ".wps", ".dot"}


def sniff_kind(data: bytes, filename: str | None) -> str:
    """Return the kind of an attachment: "xlsx", "docx", "xlsm", "xls", "doc", "zip", "pdf",
    "image", "rar", "7z", "html", "csv" or "unknown"."""
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
    except (zipfile.BadZipFile, OSError) as err:
        # A truncated .xlsx still starts with PK: let its reader report it as damaged.
        logger.info("sniff: unreadable ZIP (%s), going by the name %r", err, suffix)
        return {".xlsx": "xlsx", ".docx": "docx", ".xlsm": "xlsm"}.get(suffix, "zip")

    if "xl/workbook.xml" in names:
        return "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
    if "word/document.xml" in names:
        return "docx"
    return "zip"


def _ole2_kind(data: bytes, suffix: str) -> str:
    # WPS saves .et and .wps in the same containers as Excel 97 and Word 97.
    if suffix in _XLS_NAMES:
        return "xls"
    if suffix in _DOC_NAMES:
        return "doc"

    try:
        streams = {entry.name for entry in CompDoc(data, logfile=io.StringIO()).dirlist}
    except CompDocError as err:
        logger.info("sniff: damaged OLE2 container (%s)", err)
        return "unknown"

    if streams & {"Workbook", "Book"}:
        return "xls"
    if "WordDocument" in streams:
        return "doc"
    return "unknown"


def _is_riff_webp(data: bytes) -> bool:
    return data.startswith(b"RIFF") and data[8:12] == b"WEBP"


def _is_heic(data: bytes) -> bool:
    # ISO base media file: a box size, then "ftyp" and the brand (iPhone photos are HEIC).
    return data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"mif1", b"heim"}


def _text_kind(data: bytes, suffix: str) -> str:
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()

    # Excel and WPS "save as web page" write HTML, often under a .xls name.
    if head.startswith((b"<!doctype html", b"<html")) or b"<table" in head:
        return "html"
    if suffix == ".csv" and b"\x00" not in head:
        return "csv"
    return "unknown"
