"""sniff_kind: classification of attachments by their bytes."""

import io
import zipfile

import pytest

from ingest.sniff import sniff_kind
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, b"<x/>")
    return buffer.getvalue()


def _ole2(stream_name: str) -> bytes:
    """Return a minimal compound file (MS-CFB, version 3) holding one empty stream."""
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    header[24:28] = (0x3E).to_bytes(2, "little") + (3).to_bytes(2, "little")
    header[28:30] = b"\xfe\xff"
    header[30:32] = (9).to_bytes(2, "little")
    header[32:34] = (6).to_bytes(2, "little")
    header[44:48] = (1).to_bytes(4, "little")  # one FAT sector
    header[48:52] = (1).to_bytes(4, "little")  # directory starts at sector 1
    header[56:60] = (4096).to_bytes(4, "little")
    header[60:64] = (0xFFFFFFFE).to_bytes(4, "little")
    header[68:72] = (0xFFFFFFFE).to_bytes(4, "little")
    header[76:80] = (0).to_bytes(4, "little")  # FAT in sector 0
    header[80:512] = b"\xff" * 432

    fat = bytearray(b"\xff" * 512)
    fat[0:4] = (0xFFFFFFFD).to_bytes(4, "little")
    fat[4:8] = (0xFFFFFFFE).to_bytes(4, "little")

    directory = bytearray(512)
    directory[0:128] = _dir_entry("Root Entry", 5, child=1)
    directory[128:256] = _dir_entry(stream_name, 2, child=0xFFFFFFFF)
    directory[256:384] = _dir_entry("", 0, child=0xFFFFFFFF)
    directory[384:512] = _dir_entry("", 0, child=0xFFFFFFFF)
    return bytes(header + fat + directory)


def _dir_entry(name: str, kind: int, child: int) -> bytes:
    entry = bytearray(128)
    encoded = (name + "\x00").encode("utf-16-le") if name else b""
    entry[0 : len(encoded)] = encoded
    entry[64:66] = len(encoded).to_bytes(2, "little")
    entry[66] = kind
    entry[68:72] = (0xFFFFFFFF).to_bytes(4, "little")
    entry[72:76] = (0xFFFFFFFF).to_bytes(4, "little")
    entry[76:80] = child.to_bytes(4, "little")
    entry[116:120] = (0xFFFFFFFE).to_bytes(4, "little")
    return bytes(entry)


def test_sniff_xlsx_without_name():
    assert sniff_kind(build_xlsx([SAMPLE_ROWS["valid"]]), None) == "xlsx"


def test_sniff_xlsx_under_wrong_name():
    assert sniff_kind(build_xlsx([SAMPLE_ROWS["valid"]]), "统计表.docx") == "xlsx"


def test_sniff_docx():
    assert sniff_kind(build_docx([SAMPLE_ROWS["valid"]]), "统计表.bin") == "docx"


def test_sniff_xlsm():
    assert sniff_kind(_zip(["xl/workbook.xml", "xl/vbaProject.bin"]), "a.xlsm") == "xlsm"


def test_sniff_plain_zip():
    assert sniff_kind(_zip(["水定镇.xlsx"]), "a.zip") == "zip"


def test_sniff_truncated_xlsx_by_name():
    assert sniff_kind(build_xlsx([SAMPLE_ROWS["valid"]])[:300], "表.xlsx") == "xlsx"


def test_sniff_xls_by_name():
    assert sniff_kind(_ole2("Book"), "表.xls") == "xls"


def test_sniff_xls_by_stream():
    assert sniff_kind(_ole2("Workbook"), None) == "xls"


def test_sniff_doc_by_stream():
    assert sniff_kind(_ole2("WordDocument"), "附件.dat") == "doc"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n", "pdf"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image"),
        (b"\x89PNG\r\n\x1a\n\x00", "image"),
        (b"\x00\x00\x00\x18ftypheic", "image"),
        (b"Rar!\x1a\x07\x01\x00", "rar"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
        (b"\xef\xbb\xbf<html><body><table>", "html"),
        (b"hello", "unknown"),
        (b"", "unknown"),
    ],
)
def test_sniff_magic(data, kind):
    assert sniff_kind(data, None) == kind


def test_sniff_html_named_xls():
    assert sniff_kind(b"<table><tr><td>2</td></tr></table>", "表.xls") == "html"


def test_sniff_csv_by_name():
    assert sniff_kind("乡镇,村\n1,12\n".encode("gb18030"), "表.csv") == "csv"
