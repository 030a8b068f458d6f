"""Build the input files of the benchmark cases: a normal table and the files a bound must stop.

Every builder writes one file into a folder and returns its path, so that the measured process
only reads bytes from disk and its peak memory does not include building them.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from pathlib import Path

from service.samples.mails import MailStyle, build_mail, build_zip
from service.samples.tables import SAMPLE_ROWS, build_xlsx

# Excel's last row (Excel 2007 and later): a used range "A1:T1048576" declares it.
EXCEL_LAST_ROW = 1_048_576

_SHEET = "xl/worksheets/sheet1.xml"

MIB = 1024 * 1024
GIB = 1024 * MIB

# The zip bomb: this many zero bytes deflate to about 1 MiB (zlib level 6 compressed zeros 1028:1).
BOMB_BYTES = GIB


def normal_table(folder: Path) -> Path:
    """Write the county's form with one valid data row, as a clerk sends it."""
    return _write(folder / "normal.xlsx", build_xlsx([SAMPLE_ROWS["valid"]]))


def million_styled_rows(folder: Path) -> Path:
    """Write the form whose used range reaches row 1,048,576 through formatted empty cells.

    This is how a sheet looks after a clerk formats whole columns: every row down to Excel's
    last one carries a ``<c>`` element with a style and no value, and the ``dimension``
    element is A1:T1048576.
    """
    row = '<row r="{0}"><c r="T{0}" s="0"/></row>'
    return _write(folder / "million-styled.xlsx", _append_rows(row))


def million_filled_rows(folder: Path) -> Path:
    """Write the form with a number in column T of every row down to row 1,048,576."""
    row = '<row r="{0}"><c r="T{0}"><v>1</v></c></row>'
    return _write(folder / "million-filled.xlsx", _append_rows(row))


def normal_mail(folder: Path) -> Path:
    """Write a 163 webmail message carrying the normal table."""
    raw = build_mail(MailStyle.WEBMAIL_163, attachment=build_xlsx([SAMPLE_ROWS["valid"]]))
    return _write(folder / "normal.eml", raw)


def normal_zip(folder: Path) -> Path:
    """Write a zip holding the normal table, as a clerk zips it."""
    return _write(folder / "normal.zip", build_zip([("水定镇第3周.xlsx", build_xlsx([SAMPLE_ROWS["valid"]]))]))


def zip_bomb(folder: Path) -> Path:
    """Write a zip whose one member is 1 GiB of zeros: a classic single-layer zip bomb."""
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        _write_zeros(archive, "水定镇第3周.xlsx", BOMB_BYTES)
    return path


def zip_bomb_lying(folder: Path) -> Path:
    """Write the zip bomb with its uncompressed size declared as 1 MiB in both headers.

    The declared ratio is then about 1, so only reading stops this bomb, not the central directory.
    """
    data = bytearray(zip_bomb(folder).read_bytes())
    # The uncompressed size is at offset 22 of the local file header (signature PK\x03\x04) and at
    # offset 24 of the central directory header (PK\x01\x02), as zipfile.structFileHeader and
    # zipfile.structCentralDir lay them out.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.index(signature)
        struct.pack_into("<I", data, start + offset, MIB)
    return _write(folder / "bomb-lying.zip", bytes(data))


def zip_many_members(folder: Path) -> Path:
    """Write a zip with 10,000 small members."""
    members = [(f"表{number}.xlsx", b"x") for number in range(10_000)]
    return _write(folder / "many.zip", build_zip(members))


def zip_over_total(folder: Path) -> Path:
    """Write a zip of 45 members of 2.5 MiB, each deflated about 100 times, 112.5 MiB in all.

    Every member is under the ratio limit, so only the limit on the total size stops it.
    """
    block = os.urandom(8192)
    member = block * 320
    members = [(f"表{number}.xlsx", member) for number in range(45)]
    return _write(folder / "total.zip", build_zip(members))


def zip_nested(folder: Path) -> Path:
    """Write the normal table inside a zip inside a zip inside a zip."""
    data = build_xlsx([SAMPLE_ROWS["valid"]])
    for level in range(3):
        data = build_zip([(f"第{level}层.zip" if level else "水定镇第3周.xlsx", data)])
    return _write(folder / "nested.zip", data)


def mail_large_table(folder: Path) -> Path:
    """Write a mail of about 24 MiB, under the 25 MiB cap: the table with an 18 MiB photo inside.

    The photo is random bytes stored as xl/media/image1.jpeg, which deflate cannot shrink, so the
    workbook stays 18 MiB and the base64 mail about 24 MiB.
    """
    source = zipfile.ZipFile(io.BytesIO(build_xlsx([SAMPLE_ROWS["valid"]])))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        target.writestr("xl/media/image1.jpeg", os.urandom(18 * MIB), zipfile.ZIP_STORED)
    raw = build_mail(MailStyle.WEBMAIL_163, attachment=output.getvalue())
    return _write(folder / "large-table.eml", raw)


def mail_large_photo(folder: Path) -> Path:
    """Write a mail of about 24 MiB carrying an 18 MiB photo instead of the table."""
    photo = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(18 * MIB)
    raw = build_mail(MailStyle.WEBMAIL_163, attachment=photo, filename="统计表.jpg")
    return _write(folder / "large-photo.eml", raw)


def mail_zip_bomb(folder: Path) -> Path:
    """Write a mail carrying the 1 GiB zip bomb as its attachment."""
    bomb = zip_bomb(folder).read_bytes()
    raw = build_mail(MailStyle.WEBMAIL_163, attachment=bomb, filename="水定镇第3周.zip")
    return _write(folder / "bomb.eml", raw)


def mail_over_cap(folder: Path) -> Path:
    """Write a mail of about 40 MiB, over the 25 MiB cap, carrying a 30 MiB photo."""
    photo = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(30 * MIB)
    raw = build_mail(MailStyle.WEBMAIL_163, attachment=photo, filename="统计表.jpg")
    return _write(folder / "over-cap.eml", raw)


def _write_zeros(archive: zipfile.ZipFile, name: str, size: int) -> None:
    chunk = bytes(16 * MIB)
    with archive.open(name, "w") as member:
        for _ in range(size // len(chunk)):
            member.write(chunk)


def _append_rows(row_template: str) -> bytes:
    """Return the normal table with ``row_template`` rows from row 20 down to Excel's last row."""
    source = zipfile.ZipFile(io.BytesIO(build_xlsx([SAMPLE_ROWS["valid"]])))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == _SHEET:
                body = _stretched_sheet(body.decode("utf-8"), row_template)
            target.writestr(item, body)
    return output.getvalue()


def _stretched_sheet(text: str, row_template: str) -> bytes:
    text = re.sub(r'<dimension ref="[^"]+"/>', f'<dimension ref="A1:T{EXCEL_LAST_ROW}"/>', text)
    head, tail = text.split("</sheetData>", 1)
    rows = "".join(row_template.format(number) for number in range(20, EXCEL_LAST_ROW + 1))
    return (head + rows + "</sheetData>" + tail).encode("utf-8")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
