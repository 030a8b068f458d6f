"""Reading of HTML tables, from a mail body or an attached .html/.htm file, into grids of cells.

Clerks paste the table into the mail body, and Excel and WPS "save as web page" under an .htm or
.xls name. Each ``<table>``, nested ones included, becomes a grid named 表格1, 表格2... in
document order, with refs like ``表格1第6行第5列``. A cell spanning rows or columns (rowspan,
colspan) keeps its text at its top-left position and leaves the positions it covers blank, as a
merged cell does in a workbook. The text outside tables becomes ``text_above`` and
``text_below`` of the tables around it, inside a cell for a nested table.
"""

import codecs
import logging
import re

import lxml.html
from lxml import etree

from ingest.errors import UnreadableFile
from ingest.readers.rows import RowCollector
from ingest.table import Grid

logger = logging.getLogger(__name__)

DAMAGED_REASON = "附件中的网页表格无法读取。请发送填写好的附件二Excel（.xlsx）或Word（.docx）文件。"

# The HTML standard clamps colspan to 1000 and rowspan to 65534. A weekly table is about 20
# columns wide; columns past this many are not read, so colspan cannot make rows huge.
_MAX_COLSPAN = 1000
_MAX_ROWSPAN = 65534
_MAX_COLUMNS = 256

# Elements nested deeper than this are not read: lxml caps depth at 256 itself, and each level
# costs a Python stack frame here.
_MAX_DEPTH = 200

_SKIPPED = frozenset({"head", "script", "style", "template", "noscript", "title", "select", "textarea"})
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "center", "dd", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "tr", "ul",
})
_ROW_GROUPS = frozenset({"thead", "tbody", "tfoot"})

_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
_HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.IGNORECASE)

# Labels that Chinese pages declare for text that is really GBK, which GB18030 extends.
_GB_LABELS = frozenset({"gb2312", "gbk", "x-gbk", "cp936", "ms936", "gb_2312-80", "euc-cn", "hz-gb-2312"})


def read_html(data: bytes) -> list[Grid]:
    """Read every table of the page that has at least one cell into a grid, outer tables first.

    Returns an empty list for a page without tables. Raises UnreadableFile when lxml cannot
    parse the page at all.
    """
    text = decode_html(data)
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        document = lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)
    except etree.ParserError as err:
        logger.info("html: no document: %s", err)
        return []
    except (etree.LxmlError, ValueError) as err:
        raise UnreadableFile(f"html: cannot parse: {err}", DAMAGED_REASON) from err

    tables: list[_Table] = []
    body = _Flow()
    _walk(document, body, tables, depth=0)
    body.assign_text()
    filled = [table for table in tables if table.has_cells]
    return [table.grid(f"表格{number}") for number, table in enumerate(filled, start=1)]


def decode_html(data: bytes) -> str:
    """Return the page's text: by byte order mark, else UTF-8 when valid, else the declared
    charset, else GB18030.

    Valid UTF-8 wins over a declared charset because a mail client that decoded the body keeps
    the original ``<meta charset=gb2312>`` in the text it hands on.
    """
    for mark, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(mark):
            return data.decode(encoding, errors="replace")

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass

    for encoding in (_declared_charset(data[:4096]), "gb18030"):
        if encoding is None:
            continue
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            logger.info("html: text is not valid %s", encoding)
    return data.decode("utf-8", errors="replace")


def _declared_charset(head: bytes) -> str | None:
    match = _CHARSET.search(head) or _XML_ENCODING.search(head)
    if match is None:
        return None

    label = match.group(1).decode("ascii").lower()
    if label in _GB_LABELS:
        return "gb18030"
    try:
        return codecs.lookup(label).name
    except LookupError:
        logger.info("html: unknown charset %r", label)
        return None


class _Table:
    """One table's rows of cell values, built while the page is walked."""

    def __init__(self):
        self.rows: list[list[object]] = []
        self.caption: list[str] = []
        self.text_above: list[str] = []
        self.text_below: list[str] = []
        self.has_cells = False

    def grid(self, name: str) -> Grid:
        collector = RowCollector(name, lambda row, column: f"{name}第{row}行第{column}列")
        for values in self.rows:
            if not collector.add(values):
                break
        return collector.grid(text_above=[*self.text_above, *self.caption], text_below=self.text_below)


class _Flow:
    """Lines of text and tables in document order, for the page body or for one table cell."""

    def __init__(self):
        self.items: list[str | _Table] = []
        self._fragments: list[str] = []

    def write(self, text: str | None) -> None:
        if text:
            self._fragments.append(text)

    def end_line(self) -> None:
        line = _HTML_SPACE.sub(" ", "".join(self._fragments)).replace("\xa0", " ").strip()
        self._fragments = []
        if line:
            self.items.append(line)

    def add_table(self, table: _Table) -> None:
        self.end_line()
        self.items.append(table)

    def lines(self) -> list[str]:
        self.end_line()
        return [item for item in self.items if isinstance(item, str)]

    def assign_text(self) -> None:
        """Give each table of the flow the lines between it and its neighbouring tables.

        Tables without cells are not read, so the text runs on across them.
        """
        self.end_line()
        lines: list[str] = []
        previous: _Table | None = None
        for item in self.items:
            if isinstance(item, str):
                lines.append(item)
                continue
            if not item.has_cells:
                continue
            if previous is not None:
                previous.text_below = lines
            item.text_above = lines
            previous, lines = item, []
        if previous is not None:
            previous.text_below = lines


def _walk(element, flow: _Flow, tables: list[_Table], depth: int) -> None:
    tag = _tag(element)
    if tag in _SKIPPED or _is_hidden(element):
        return
    if depth > _MAX_DEPTH:
        logger.info("html: elements nested deeper than %d not read", _MAX_DEPTH)
        return

    if tag == "table":
        _read_table(element, flow, tables, depth)
        return

    block = tag in _BLOCKS
    if block:
        flow.end_line()
    flow.write(element.text)
    for child in element:
        _walk(child, flow, tables, depth + 1)
        flow.write(child.tail)
    if block:
        flow.end_line()


def _read_table(element, flow: _Flow, tables: list[_Table], depth: int) -> None:
    table = _Table()
    tables.append(table)
    flow.add_table(table)

    rows = []
    for child in element:
        tag = _tag(child)
        if tag == "caption":
            caption = _Flow()
            _walk(child, caption, tables, depth + 1)
            table.caption = caption.lines()
        elif tag == "tr":
            rows.append(child)
        elif tag in _ROW_GROUPS:
            rows.extend(row for row in child if _tag(row) == "tr")

    # Excel's "save as web page" keeps hidden rows with display:none; the clerk does not see them.
    rows = [row for row in rows if not _is_hidden(row)]

    _place_cells(table, rows, tables, depth)


def _place_cells(table: _Table, rows: list, tables: list[_Table], depth: int) -> None:
    """Lay the cells out on the grid as the HTML table model does (rowspan and colspan)."""
    covered: dict[int, int] = {}  # column -> rows still covered by a cell from a row above
    for number, row in enumerate(rows):
        values: dict[int, object] = {}
        column = 0
        for cell in row:
            if _tag(cell) not in ("td", "th"):
                continue
            while covered.get(column, 0) > 0:
                column += 1
            if column >= _MAX_COLUMNS:
                break

            colspan = _span(cell.get("colspan"), 1, _MAX_COLSPAN)
            rowspan = _span(cell.get("rowspan"), 0, _MAX_ROWSPAN) or len(rows) - number
            values[column] = _cell_value(cell, tables, depth)
            table.has_cells = True
            for spanned in range(column, min(column + colspan, _MAX_COLUMNS)):
                if rowspan > 1:
                    covered[spanned] = rowspan
            column += colspan

        table.rows.append([values.get(index) for index in range(max(values, default=-1) + 1)])
        covered = {index: left - 1 for index, left in covered.items() if left > 1}


def _tag(element) -> str:
    # Comments and processing instructions have a function as their tag.
    return element.tag.lower() if isinstance(element.tag, str) else ""


def _is_hidden(element) -> bool:
    return bool(_HIDDEN.search(element.get("style", "")))


def _span(text: str | None, minimum: int, maximum: int) -> int:
    # Browsers read the leading digits of the attribute and use 1 for anything else.
    match = re.match(r"\s*(\d+)", text or "")
    if match is None:
        return 1
    return max(minimum, min(int(match.group(1)), maximum))


def _cell_value(cell, tables: list[_Table], depth: int) -> object:
    content = _Flow()
    content.write(cell.text)
    for child in cell:
        _walk(child, content, tables, depth + 1)
        content.write(child.tail)
    content.assign_text()

    number = _excel_number(cell.get("x:num"))
    if number is not None:
        return number
    text = "\n".join(content.lines())
    return text or None


def _excel_number(raw: str | None) -> int | float | None:
    # Excel's "save as web page" writes the unformatted value in x:num when the cell shows it
    # formatted, e.g. <td x:num="2385">2,385</td>.
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value
