"""Reading of .docx documents: each table, nested ones included, becomes a grid with its context.

python-docx's ``row.cells`` returns a merged cell once for every grid column and every row it
spans, so a value typed into a merged cell would be counted several times. This reader walks the
``w:tc`` elements instead and keeps a merged cell's text only at its top-left grid position.
It also reads text and tables wrapped in content controls (``w:sdt``), custom XML and tracked
insertions, which python-docx 1.2's ``iter_inner_content`` and ``Paragraph.text`` skip. Word
templates often put their fill-in fields in content controls.

Clerks lay out the 填报 line and the signatures in small borderless tables around the weekly
table, or put the whole form inside a cell of a layout table. So a grid's ``text_above`` and
``text_below`` contain the paragraphs and the rows of small tables next to it. Those of a nested
table also contain the rows of the table around it.
"""

import io
import logging
import zipfile
import zlib
from collections.abc import Iterable, Iterator

from docx import Document
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.oxml.table import CT_Tbl
from lxml.etree import XMLSyntaxError

from ingest.errors import UnreadableFile
from ingest.table import Cell, Grid

logger = logging.getLogger(__name__)

DAMAGED_REASON = "附件无法作为Word文档打开，文件可能已损坏或不完整。请用Word或WPS打开确认后重新保存，再作为附件发送。"

_P, _R, _TBL = qn("w:p"), qn("w:r"), qn("w:tbl")
_SDT, _SDT_CONTENT, _CUSTOM_XML = qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")

# Cells wrapped in a content control (w:sdt) or custom XML sit one level deeper than w:tc.
_ROW_CELLS = "./w:tc | ./w:sdt/w:sdtContent/w:tc | ./w:customXml/w:tc"

# A table of at most this many rows is a layout table for the 填报 line or the signatures, so its
# rows count as text around the neighbouring tables. The county's Word form has 10 rows.
_CONTEXT_TABLE_ROWS = 3

# Lines of context kept on each side of a table: a form page has about a dozen.
_CONTEXT_LINES = 40

# Tables nested deeper than this are not read: a form needs at most a layout table or two around
# the weekly table, and the limit bounds the recursion.
_MAX_NESTING = 4


def read_docx(data: bytes) -> list[Grid]:
    """Read every table of the document body into a :class:`Grid`, in document order.

    Top-level tables are named 表格1, 表格2...; a table inside a cell of 表格1 is named
    表格1中的表格1 and follows 表格1.
    """
    document = _open(data)
    body = getattr(document.element, "body", None)
    if body is None:
        # word/document.xml holds some other XML than a w:document.
        raise UnreadableFile("docx: main part is not a w:document", DAMAGED_REASON)
    return _read_container(_blocks(body), "表格", [], [], depth=0)


def _open(data: bytes):
    # zlib.error: a member's deflate stream is corrupt; NotImplementedError: a compression method
    # zipfile lacks; EOFError: a truncated member; AttributeError: python-docx 1.2 meets other
    # XML than it expects in [Content_Types].xml or a .rels part.
    try:
        return Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError, zlib.error,
            NotImplementedError, EOFError, AttributeError) as err:
        raise UnreadableFile(f"docx: cannot open document: {err}", DAMAGED_REASON) from err


def _blocks(container) -> Iterator[str | CT_Tbl]:
    """Yield the text of each paragraph and each table directly in the body or a ``w:tc``.

    Content controls and custom XML around paragraphs or tables are looked through.
    """
    for child in container.iterchildren():
        if child.tag == _P:
            yield _paragraph_text(child)
        elif child.tag == _TBL:
            yield child
        elif child.tag == _SDT:
            for content in child.iterchildren(_SDT_CONTENT):
                yield from _blocks(content)
        elif child.tag == _CUSTOM_XML:
            yield from _blocks(child)


def _paragraph_text(paragraph) -> str:
    """Return the text of every run in the paragraph, also inside hyperlinks, fields, content
    controls and tracked insertions. Deleted text is in ``w:delText``, which a run's text omits."""
    return "".join(run.text for run in paragraph.iter(_R))


def _cell_text(tc) -> str:
    """Return the paragraphs of a cell, one per line, without the text of tables nested in it."""
    return "\n".join(block for block in _blocks(tc) if isinstance(block, str))


def _read_container(blocks: Iterable[str | CT_Tbl], prefix: str, above: list[str], below: list[str],
                    depth: int, first_number: int = 1) -> list[Grid]:
    """Read the tables among ``blocks`` (the body or one cell) and then the tables nested in them.

    ``above`` and ``below`` are the text around the container itself. The tables are named
    ``prefix`` followed by ``first_number``, ``first_number + 1``...
    """
    items: list[str | Grid] = []
    tables: list[tuple[CT_Tbl, Grid]] = []
    for block in blocks:
        if isinstance(block, str):
            if block.strip():
                items.append(block.strip())
            continue

        grid = _read_table(block, f"{prefix}{first_number + len(tables)}")
        items.append(grid)
        tables.append((block, grid))

    _assign_context(items, above, below)

    grids: list[Grid] = []
    for table, grid in tables:
        grids.append(grid)
        grids.extend(_read_nested(table, grid, depth + 1))
    return grids


def _assign_context(items: list[str | Grid], above: list[str], below: list[str]) -> None:
    """Set each grid's text_above and text_below from the items around it, up to a large table."""
    for position, item in enumerate(items):
        if not isinstance(item, Grid):
            continue

        before, reached_start = _context(reversed(items[:position]))
        item.text_above = ([*above] if reached_start else []) + before[::-1]
        item.text_above = item.text_above[-_CONTEXT_LINES:]

        after, reached_end = _context(items[position + 1 :])
        item.text_below = [*after, *(below if reached_end else [])][:_CONTEXT_LINES]


def _context(items: Iterable[str | Grid]) -> tuple[list[str], bool]:
    """Return the lines of the items up to the first large table, and whether none was met."""
    lines: list[str] = []
    for item in items:
        if isinstance(item, str):
            lines.append(item)
        elif len(item.rows) <= _CONTEXT_TABLE_ROWS:
            lines.extend(_row_lines(item.rows))
        else:
            return lines, False
    return lines, True


def _read_nested(table: CT_Tbl, grid: Grid, depth: int) -> list[Grid]:
    """Read the tables inside the cells of ``table``, which was read into ``grid``."""
    nested: list[Grid] = []
    count = 0
    for number, tr in enumerate(table.tr_lst):
        for tc in tr.xpath(_ROW_CELLS):
            inner = [block for block in _blocks(tc) if not isinstance(block, str)]
            if not inner:
                continue
            if depth > _MAX_NESTING:
                logger.info("docx: %s: tables nested deeper than %d levels are not read", grid.name, _MAX_NESTING)
                return nested

            above = [*grid.text_above, *_row_lines(grid.rows[:number])]
            below = [*_row_lines(grid.rows[number + 1 :]), *grid.text_below]
            nested.extend(_read_container(_blocks(tc), f"{grid.name}中的表格", above, below, depth, count + 1))
            count += len(inner)
    return nested


def _row_lines(rows: list[list[Cell]]) -> list[str]:
    lines = ("  ".join(str(cell.value).strip() for cell in row if cell.value and str(cell.value).strip()) for row in rows)
    return [line for line in lines if line]


def _read_table(table: CT_Tbl, name: str) -> Grid:
    width = len(table.tblGrid.gridCol_lst)
    rows = [_read_row(tr, name, number) for number, tr in enumerate(table.tr_lst, start=1)]

    width = max([width, *(len(row) for row in rows)])
    for number, row in enumerate(rows, start=1):
        row.extend(_blank(name, number, column) for column in range(len(row) + 1, width + 1))

    logger.debug("docx: %s has %d rows and %d grid columns", name, len(rows), width)
    return Grid(name=name, rows=rows)


def _read_row(tr, name: str, number: int) -> list[Cell]:
    cells = [_blank(name, number, column) for column in range(1, tr.grid_before + 1)]

    for tc in tr.xpath(_ROW_CELLS):
        column = len(cells) + 1
        text = None if _is_covered(tc) else _cell_text(tc)
        cells.append(Cell(value=text, ref=_ref(name, number, column)))
        cells.extend(_blank(name, number, column + offset) for offset in range(1, tc.grid_span))

    return cells


def _is_covered(tc) -> bool:
    """Return whether a merged cell to the left or above covers this ``w:tc``.

    A vMerge "continue" cell is covered by the cell above it. Word 2003 documents merge
    horizontally with w:hMerge instead of w:gridSpan (ECMA-376 Part 1, 17.4.22, kept for
    compatibility), and its "continue" cells are covered by the cell to the left.
    """
    if tc.vMerge == "continue":
        return True
    return any(merge.get(qn("w:val"), "continue") == "continue" for merge in tc.xpath("./w:tcPr/w:hMerge"))


def _blank(name: str, number: int, column: int) -> Cell:
    return Cell(value=None, ref=_ref(name, number, column))


def _ref(name: str, number: int, column: int) -> str:
    return f"{name}第{number}行第{column}列"
