"""expand_files on real zip archives, attached mails and other archives."""

import io
import os
import struct
import zipfile

import pytest

from tests.fixtures.archives import empty_7z, empty_rar5
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.containers import (
    DAMAGED_ZIP_REASON,
    EMPTY_MAIL_REASON,
    EMPTY_ZIP_REASON,
    ENCRYPTED_ZIP_REASON,
    METHOD_REASON,
    NESTED_ZIP_REASON,
    OTHER_ARCHIVE_REASONS,
    Limits,
    expand_files,
)
from ingest.locate import locate_tables
from ingest.message import TOO_DEEP_REASON, Attachment, parse_message
from ingest.readers import read_grids
from ingest.sniff import sniff_kind
from ingest.table import FileProblem
from service.samples.mails import (
    MailStyle,
    ZipNames,
    build_mail,
    build_mail_with_files,
    build_zip,
)
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx

XLSX = build_xlsx([SAMPLE_ROWS["valid"]])
DOCX = build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇", reporter="王芳")
TABLE_NAME = "水定镇第3周科技之冬周统计表.xlsx"
MIB = 1024 * 1024


def attachment(name: str, data: bytes) -> Attachment:
    return Attachment(name, data, "application/octet-stream", sniff_kind(data, name))


def zip_attachment(name: str, members, names: ZipNames = ZipNames.UTF8) -> Attachment:
    return attachment(name, build_zip(members, names=names))


def expanded_names(*attachments: Attachment, limits: Limits | None = None) -> list[str]:
    return [item.filename for item in expand_files(list(attachments), limits)[0]]


def problems(*attachments: Attachment, limits: Limits | None = None) -> list[FileProblem]:
    return expand_files(list(attachments), limits)[1]


def patch_zip_field(data: bytes, local_offset: int, central_offset: int, value: bytes) -> bytes:
    """Overwrite one field in the first local header and in the first central directory entry."""
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    central = patched.find(b"PK\x01\x02")
    patched[local + local_offset:local + local_offset + len(value)] = value
    patched[central + central_offset:central + central_offset + len(value)] = value
    return bytes(patched)


# Member names and contents.

@pytest.mark.parametrize("names", list(ZipNames))
def test_zip_member_name_decoded(names):
    archive = zip_attachment("第3周.zip", [(TABLE_NAME, XLSX)], names)
    assert expanded_names(archive) == [f"第3周.zip/{TABLE_NAME}"]


def test_zip_gbk_name_has_no_utf8_flag():
    data = build_zip([(TABLE_NAME, XLSX)], names=ZipNames.GBK)
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x800 == 0


def test_zip_gbk_only_character():
    archive = zip_attachment("a.zip", [("萨尔布拉克镇（赵喆）.xlsx", XLSX)], ZipNames.GBK)
    assert expanded_names(archive) == ["a.zip/萨尔布拉克镇（赵喆）.xlsx"]


def test_zip_folder_path_kept():
    archive = zip_attachment("第3周.zip", [(f"周报/{TABLE_NAME}", XLSX)], ZipNames.GBK)
    assert expanded_names(archive) == [f"第3周.zip/周报/{TABLE_NAME}"]


def test_zip_backslash_path():
    archive = zip_attachment("a.zip", [("周报\\表.xlsx", XLSX)], ZipNames.GBK)
    assert expanded_names(archive) == ["a.zip/周报/表.xlsx"]


def test_zip_member_bytes():
    files, _ = expand_files([zip_attachment("a.zip", [(TABLE_NAME, XLSX)])])
    assert files[0].data == XLSX


def test_zip_member_kind_from_bytes():
    files, _ = expand_files([zip_attachment("a.zip", [("表.xls", XLSX)])])
    assert files[0].kind == "xlsx"


def test_zip_member_content_type():
    files, _ = expand_files([zip_attachment("a.zip", [("表.docx", DOCX)])])
    assert files[0].content_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_zip_member_table_located():
    files, _ = expand_files([zip_attachment("a.zip", [(TABLE_NAME, XLSX)], ZipNames.GBK)])
    tables = locate_tables(read_grids(files[0].data, files[0].kind))
    assert tables[0].header.unit_text == "水定镇"


def test_zip_two_tables_in_order():
    archive = zip_attachment("a.zip", [("1.xlsx", XLSX), ("2.docx", DOCX)])
    assert expanded_names(archive) == ["a.zip/1.xlsx", "a.zip/2.docx"]


@pytest.mark.parametrize("junk", [
    "__MACOSX/._表.xlsx", "._表.xlsx", ".DS_Store", "周报/Thumbs.db", "desktop.ini", "~$表.xlsx",
])
def test_zip_junk_entries_skipped(junk):
    archive = zip_attachment("a.zip", [(junk, b"\x00\x05\x16\x07"), ("表.xlsx", XLSX)])
    assert expanded_names(archive) == ["a.zip/表.xlsx"]


def test_zip_directory_entries_skipped():
    archive = zip_attachment("a.zip", [("周报/", b""), ("周报/表.xlsx", XLSX)])
    assert expanded_names(archive) == ["a.zip/周报/表.xlsx"]


def test_empty_zip_reason():
    assert expand_files([zip_attachment("a.zip", [])]) == ([], [FileProblem("a.zip", EMPTY_ZIP_REASON)])


def test_zip_of_junk_only_reason():
    archive = zip_attachment("a.zip", [("__MACOSX/._表.xlsx", b"\x00\x05\x16\x07")])
    assert problems(archive) == [FileProblem("a.zip", EMPTY_ZIP_REASON)]


# Nesting.

def test_nested_zip_expanded():
    inner = build_zip([(TABLE_NAME, XLSX)], names=ZipNames.GBK)
    archive = zip_attachment("外.zip", [("内.zip", inner)], ZipNames.GBK)
    assert expanded_names(archive) == [f"外.zip/内.zip/{TABLE_NAME}"]


def test_third_zip_level_rejected():
    third = build_zip([(TABLE_NAME, XLSX)])
    second = build_zip([("三.zip", third)])
    archive = zip_attachment("一.zip", [("二.zip", second)])
    assert problems(archive) == [FileProblem("一.zip/二.zip/三.zip", NESTED_ZIP_REASON)]


def test_third_zip_level_no_files():
    third = build_zip([(TABLE_NAME, XLSX)])
    archive = zip_attachment("一.zip", [("二.zip", build_zip([("三.zip", third)]))])
    assert expanded_names(archive) == []


# Limits.

@pytest.mark.parametrize("field, value", [
    ("max_members", 50), ("max_total_bytes", 100 * MIB), ("max_ratio", 200), ("max_depth", 5),
])
def test_limits_defaults(field, value):
    assert getattr(Limits(), field) == value


def test_members_at_limit_expanded():
    archive = zip_attachment("a.zip", [(f"{index}.txt", b"x") for index in range(50)])
    assert len(expanded_names(archive)) == 50


def test_too_many_members_rejected():
    archive = zip_attachment("a.zip", [(f"{index}.txt", b"x") for index in range(51)])
    assert problems(archive)[0].reason.startswith("压缩包内有 51 个文件，超过可读取的上限（50 个）")


def test_too_many_members_no_files():
    archive = zip_attachment("a.zip", [(f"{index}.txt", b"x") for index in range(51)])
    assert expanded_names(archive) == []


def test_total_size_rejected():
    archive = zip_attachment("a.zip", [("photo.jpg", os.urandom(2 * MIB))])
    assert problems(archive, limits=Limits(max_total_bytes=MIB))[0].file_name == "a.zip"


def test_total_size_reason():
    archive = zip_attachment("a.zip", [("photo.jpg", os.urandom(2 * MIB))])
    reason = problems(archive, limits=Limits(max_total_bytes=MIB))[0].reason
    assert reason.startswith("压缩包解压后超过 1 MB")


def test_total_size_shared_by_archives():
    first = zip_attachment("1.zip", [("a.bin", os.urandom(600 * 1024))])
    second = zip_attachment("2.zip", [("b.bin", os.urandom(600 * 1024))])
    assert expanded_names(first, second, limits=Limits(max_total_bytes=MIB)) == ["1.zip/a.bin"]


def test_zip_bomb_rejected():
    bomb = zip_attachment("bomb.zip", [("表.xlsx", bytes(50 * MIB))])
    assert problems(bomb)[0].reason.startswith("压缩包中的“表.xlsx”解压后是压缩前的 200 倍以上")


def test_zip_bomb_no_files():
    assert expanded_names(zip_attachment("bomb.zip", [("表.xlsx", bytes(50 * MIB))])) == []


def test_small_compressible_member_kept():
    # 512 KiB of zeros deflates about a thousand times but stays under the ratio floor.
    assert expanded_names(zip_attachment("a.zip", [("a.csv", bytes(512 * 1024))])) == ["a.zip/a.csv"]


def test_declared_size_lie_damaged():
    data = build_zip([("a.csv", bytes(100_000))])
    # Uncompressed size: offset 22 in the local header, 24 in the central directory entry.
    lying = patch_zip_field(data, 22, 24, struct.pack("<I", 1000))
    assert problems(attachment("a.zip", lying)) == [FileProblem("a.zip", DAMAGED_ZIP_REASON)]


# Damaged, encrypted and other archives.

def test_truncated_zip_damaged():
    data = build_zip([(TABLE_NAME, XLSX)])
    assert problems(Attachment("a.zip", data[:-30], "application/zip", "zip")) == [
        FileProblem("a.zip", DAMAGED_ZIP_REASON)
    ]


def test_corrupt_member_damaged():
    data = bytearray(build_zip([(TABLE_NAME, XLSX)]))
    data[200:260] = bytes(60)
    assert problems(attachment("a.zip", bytes(data))) == [FileProblem("a.zip", DAMAGED_ZIP_REASON)]


def test_unsupported_method_reason():
    # Method 9 is Deflate64, which Windows Explorer writes for large files; zipfile lacks it.
    data = patch_zip_field(build_zip([(TABLE_NAME, XLSX)]), 8, 10, struct.pack("<H", 9))
    assert problems(attachment("a.zip", data)) == [FileProblem("a.zip", METHOD_REASON)]


def test_encrypted_zip_reason(encrypted_zip):
    assert problems(attachment("加密.zip", encrypted_zip)) == [FileProblem("加密.zip", ENCRYPTED_ZIP_REASON)]


def test_encrypted_zip_no_files(encrypted_zip):
    assert expanded_names(attachment("加密.zip", encrypted_zip)) == []


def test_encrypted_zip_inside_zip(encrypted_zip):
    archive = zip_attachment("外.zip", [("加密.zip", encrypted_zip)])
    assert problems(archive) == [FileProblem("外.zip/加密.zip", ENCRYPTED_ZIP_REASON)]


@pytest.mark.parametrize("name, data, kind", [("表.rar", empty_rar5(), "rar"), ("表.7z", empty_7z(), "7z")])
def test_other_archive_reason(name, data, kind):
    assert problems(attachment(name, data)) == [FileProblem(name, OTHER_ARCHIVE_REASONS[kind])]


def test_rar_inside_zip_reason():
    archive = zip_attachment("a.zip", [("表.rar", empty_rar5())])
    assert problems(archive) == [FileProblem("a.zip/表.rar", OTHER_ARCHIVE_REASONS["rar"])]


# Attached mails.

def eml(data: bytes, name: str = "原邮件.eml") -> Attachment:
    return Attachment(name, data, "application/octet-stream", "eml")


def saved_mail(levels: int) -> bytes:
    raw = build_mail(MailStyle.FOXMAIL, attachment=XLSX, filename=TABLE_NAME)
    for level in range(levels):
        raw = build_mail_with_files([(f"第{level}层.eml", raw)], subject=f"转发 {level}")
    return raw


def test_eml_attachment_opened():
    assert expanded_names(eml(saved_mail(0))) == [f"原邮件.eml/{TABLE_NAME}"]


def test_eml_attachment_bytes():
    assert expand_files([eml(saved_mail(0))])[0][0].data == XLSX


def test_eml_html_table_becomes_file():
    raw = build_mail_with_files(html="<table><tr><td>乡镇（个）</td></tr></table>", subject="水定镇第3周")
    assert expanded_names(eml(raw)) == ["原邮件.eml/水定镇第3周（正文）.html"]


def test_eml_without_files_reason():
    raw = build_mail(MailStyle.NO_ATTACHMENT)
    assert expand_files([eml(raw)]) == ([], [FileProblem("原邮件.eml", EMPTY_MAIL_REASON)])


def test_eml_inside_zip_opened():
    archive = zip_attachment("a.zip", [("原邮件.eml", saved_mail(0))])
    assert expanded_names(archive) == [f"a.zip/原邮件.eml/{TABLE_NAME}"]


def test_zip_inside_eml_opened():
    raw = build_mail_with_files([("第3周.zip", build_zip([(TABLE_NAME, XLSX)], names=ZipNames.GBK))])
    assert expanded_names(eml(raw)) == [f"原邮件.eml/第3周.zip/{TABLE_NAME}"]


def test_eml_depth_limit_problem():
    limits = Limits(max_depth=1)
    inner = eml(build_mail_with_files([("内.eml", saved_mail(0))]))
    assert expand_files([inner], limits)[1] == [FileProblem("原邮件.eml/内.eml", TOO_DEEP_REASON)]


def test_eml_inner_problem_named():
    deep = build_mail_with_files(forwarded=[build_mail_with_files(forwarded=[saved_mail(0)])])
    found = problems(eml(deep), limits=Limits(max_depth=2))
    assert found == [FileProblem("原邮件.eml/转发的邮件", TOO_DEEP_REASON)]


def test_sniffed_eml_from_mail():
    # The mail's own parser names the kind, so this covers ingest.sniff's "eml" kind as well.
    raw = build_mail_with_files([("原邮件.eml", saved_mail(0))], subject="转发")
    files, _ = expand_files(parse_message(raw).attachments)
    assert [item.filename for item in files] == [f"原邮件.eml/{TABLE_NAME}"]


# Everything else.

def test_plain_files_pass_through():
    files = [attachment("表.xlsx", XLSX), attachment("照片.jpg", b"\xff\xd8\xff\xe0" + bytes(100))]
    assert expand_files(files)[0] == files


def test_order_kept_around_archive():
    first = attachment("说明.pdf", b"%PDF-1.4\n")
    archive = zip_attachment("a.zip", [(TABLE_NAME, XLSX)])
    last = attachment("表.docx", DOCX)
    assert expanded_names(first, archive, last) == ["说明.pdf", f"a.zip/{TABLE_NAME}", "表.docx"]


def test_mail_with_zip_end_to_end():
    zipped = build_zip([(TABLE_NAME, XLSX)], names=ZipNames.GBK)
    mail = parse_message(build_mail(MailStyle.ANDROID, attachment=zipped, filename="第3周.zip"))
    files, _ = expand_files(mail.attachments)
    assert locate_tables(read_grids(files[0].data, files[0].kind))[0].rows[0].cells[7].value == 892


NESTED = build_zip([
    (TABLE_NAME, XLSX),
    ("内.zip", build_zip([("表.docx", DOCX)], names=ZipNames.GBK)),
    ("原邮件.eml", build_mail(MailStyle.FOXMAIL, attachment=build_zip([("a.csv", b"1,2")]), filename="a.zip")),
], names=ZipNames.GBK)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(NESTED) - 1), st.binary(min_size=1, max_size=16))
def test_fuzz_corrupted_zip(position, noise):
    data = NESTED[:position] + noise + NESTED[position + len(noise):]
    files, found = expand_files([Attachment("a.zip", data, "application/zip", "zip")])
    # Every corrupted archive still yields files to read or a reason for the reply.
    assert files or found
