"""sniff_kind: classification of attachments by their bytes."""

import io
import zipfile

import pytest

from ingest.sniff import KINDS, sniff_kind
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, b"<x/>")
    return buffer.getvalue()


def _ole2(*stream_names: str) -> bytes:
    """Return a minimal compound file (MS-CFB, version 3) holding up to three empty streams."""
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

    # The root's child is the first stream; each stream's right sibling is the next one.
    entries = [_dir_entry("Root Entry", 5, child=1)]
    for number, name in enumerate(stream_names, start=1):
        right = number + 1 if number < len(stream_names) else 0xFFFFFFFF
        entries.append(_dir_entry(name, 2, child=0xFFFFFFFF, right=right))
    entries.extend(_dir_entry("", 0, child=0xFFFFFFFF) for _ in range(4 - len(entries)))
    return bytes(header + fat + b"".join(entries))


def _dir_entry(name: str, kind: int, child: int, right: int = 0xFFFFFFFF) -> bytes:
    entry = bytearray(128)
    encoded = (name + "\x00").encode("utf-16-le") if name else b""
    entry[0 : len(encoded)] = encoded
    entry[64:66] = len(encoded).to_bytes(2, "little")
    entry[66] = kind
    entry[68:72] = (0xFFFFFFFF).to_bytes(4, "little")
    entry[72:76] = right.to_bytes(4, "little")
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


def test_sniff_ooxml_encrypted():
    assert sniff_kind(_ole2("EncryptionInfo", "EncryptedPackage"), "统计表.xlsx") == "encrypted"


def test_sniff_xls_stream_named_et():
    assert sniff_kind(_ole2("Workbook"), "统计表.et") == "xls"


def test_sniff_word_stream_named_wps():
    assert sniff_kind(_ole2("WordDocument"), "统计表.wps") == "wps"


def test_sniff_works_document_named_wps():
    assert sniff_kind(_ole2("CONTENTS"), "统计表.wps") == "wps"


def test_sniff_other_et():
    assert sniff_kind(_ole2("ETExtData"), "统计表.et") == "et"


def test_sniff_damaged_ole2_by_name():
    assert sniff_kind(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "统计表.doc") == "doc"


def test_sniff_damaged_ole2_without_name():
    assert sniff_kind(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, None) == "unknown"


def test_sniff_opendocument():
    assert sniff_kind(_zip(["mimetype", "content.xml", "META-INF/manifest.xml"]), "统计表.ods") == "unknown"


_MAIL = (
    b"Return-Path: <shuiding_kx@163.com>\r\n"
    b"From: =?UTF-8?B?5rC05a6a6ZWH?= <shuiding_kx@163.com>\r\n"
    b"To: hckexie2023@163.com\r\n"
    b"Subject: =?UTF-8?B?56ysM+WRqA==?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<html><body><table><tr><td>2</td></tr></table></body></html>\r\n"
)


def test_sniff_mail_with_html_body():
    assert sniff_kind(_MAIL, "转发.dat") == "eml"


def test_sniff_mail_long_received_chain():
    received = b"".join(b"Received: from mx%d.example.test by mx.example.test; Fri, 22 Dec 2023\r\n" % n for n in range(80))
    assert sniff_kind(received + _MAIL, None) == "eml"


def test_sniff_eml_by_name():
    assert sniff_kind(b"X-Mailer: Foxmail\r\n\r\nbody", "转发邮件.eml") == "eml"


def test_sniff_single_header_line_not_mail():
    assert sniff_kind(b"Subject: notes\n\nplain text", None) == "unknown"


def test_sniff_csv_named_xls():
    assert sniff_kind("乡镇\t村\r\n1\t12\r\n".encode("gb18030"), "导出.xls") == "csv"


def test_sniff_utf16_text_table():
    assert sniff_kind("乡镇\t村\r\n1\t12\r\n".encode("utf-16"), "统计表.txt") == "csv"


def test_sniff_text_without_delimiters():
    assert sniff_kind("只有一行文字".encode(), "说明.txt") == "unknown"


def test_sniff_kinds_declared():
    samples = [_ole2("EncryptionInfo", "EncryptedPackage"), _MAIL, b"%PDF-1.4", b"", _ole2("Workbook")]
    assert {sniff_kind(data, None) for data in samples} <= KINDS


def test_sniff_cyclic_ole2_directory():
    data = bytearray(_ole2("Workbook"))
    # The first stream's right sibling points to itself, so the directory tree never ends.
    right_sibling = 1024 + 128 + 72
    data[right_sibling : right_sibling + 4] = (1).to_bytes(4, "little")
    assert sniff_kind(bytes(data), "统计表.xls") == "xls"


def test_sniff_zip_of_unknown_version():
    data = bytearray(build_xlsx([SAMPLE_ROWS["valid"]]))
    # "Version needed to extract" of the first central directory entry, set past what zipfile reads.
    central = data.index(b"PK\x01\x02")
    data[central + 6 : central + 8] = (126).to_bytes(2, "little")
    assert sniff_kind(bytes(data), "统计表.xlsx") == "xlsx"
