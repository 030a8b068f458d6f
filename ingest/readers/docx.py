"""Reading of .docx documents: each body table becomes a grid, with the paragraphs around it.

python-docx's ``row.cells`` returns a merged cell once for every grid column and every row it
spans, so a value typed into a merged cell would be counted several times. This reader walks the
``w:tc`` elements instead and keeps a merged cell's text only at its top-left grid position.
"""

import io
import logging
import zipfile

from docx import Document
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from lxml.etree import XMLSyntaxError

from ingest.errors import UnreadableFile
from ingest.table import Cell, Grid

logger = logging.getLogger(__name__)

DAMAGED_REASON = "附件无法作为Word文档打开，文件可能已损坏或不完整。请用Word或WPS打开确认后重新保存，再作为附件发送。"

# Cells wrapped in a content control (w:sdt) or custom XML sit one level deeper than w:tc.
_ROW_CELLS = "./w:tc | ./w:sdt/w:sdtContent/w:tc | ./w:customXml/w:tc"


def read_docx(data: bytes) -> list[Grid]:
    """Read every top-level table of the document body into a :class:`Grid` named 表格1, 表格2...

    ``text_above`` contains the non-empty paragraphs between the previous table (or the start) and
    this one, ``text_below`` those up to the next table (or the end).
    """
    document = _open(data)

    grids: list[Grid] = []
    paragraphs: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            _append_text(paragraphs, block.text)
            continue

        if grids:
            grids[-1].text_below = paragraphs
        grids.append(_read_table(block, f"表格{len(grids) + 1}", paragraphs))
        paragraphs = []

    if grids:
        grids[-1].text_below = paragraphs
    return grids


def _open(data: bytes):
    try:
        return Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as err:
        raise UnreadableFile(f"docx: cannot open document: {err}", DAMAGED_REASON) from err


def _append_text(paragraphs: list[str], text: str) -> None:
    if text.strip():
        paragraphs.append(text.strip())


def _read_table(table: Table, name: str, text_above: list[str]) -> Grid:
    width = len(table._tbl.tblGrid.gridCol_lst)
    rows = [_read_row(table, tr, name, number) for number, tr in enumerate(table._tbl.tr_lst, start=1)]

    width = max([width, *(len(row) for row in rows)])
    for number, row in enumerate(rows, start=1):
        row.extend(_blank(name, number, column) for column in range(len(row) + 1, width + 1))

    logger.debug("docx: %s has %d rows and %d grid columns", name, len(rows), width)
    return Grid(name=name, rows=rows, text_above=text_above)


def _read_row(table: Table, tr, name: str, number: int) -> list[Cell]:
    cells = [_blank(name, number, column) for column in range(1, tr.grid_before + 1)]

    for tc in tr.xpath(_ROW_CELLS):
        column = len(cells) + 1
        # A vMerge "continue" cell is covered by the merged cell above it.
        text = None if tc.vMerge == "continue" else _Cell(tc, table).text
        cells.append(Cell(value=text, ref=_ref(name, number, column)))
        cells.extend(_blank(name, number, column + offset) for offset in range(1, tc.grid_span))

    return cells


def _blank(name: str, number: int, column: int) -> Cell:
    return Cell(value=None, ref=_ref(name, number, column))


def _ref(name: str, number: int, column: int) -> str:
    return f"{name}第{number}行第{column}列"
