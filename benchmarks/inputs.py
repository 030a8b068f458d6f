"""Build the input files of the benchmark cases: a normal table and the files a bound must stop.

Every builder writes one file into a folder and returns its path, so that the measured process
only reads bytes from disk and its peak memory does not include building them.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_xlsx

# Excel's last row (Excel 2007 and later): a used range "A1:T1048576" declares it.
EXCEL_LAST_ROW = 1_048_576

_SHEET = "xl/worksheets/sheet1.xml"


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
