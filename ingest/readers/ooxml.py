"""Direct reading of the parts of an .xlsx package that openpyxl's read-only mode does not expose.

openpyxl reads either each formula's cached result (``data_only=True``) or its text, and reports
a formula saved without a result as a blank. This module finds those formulas in the worksheet
XML, so that :mod:`ingest.readers.formulas` can compute them. It also checks the package's parts
before openpyxl loads them into memory. XML is parsed with defusedxml (ECMA-376 Part 1 and Part 2
give the element names used here).
"""

import logging
import posixpath
import zipfile
import zlib

from defusedxml.ElementTree import ParseError, fromstring, iterparse
from openpyxl.formula.translate import Translator, TranslatorError
from openpyxl.utils.cell import coordinate_to_tuple, get_column_letter

from ingest.errors import UnreadableFile
from ingest.readers.formulas import FORMULA_REASON, Position

logger = logging.getLogger(__name__)

# openpyxl loads the shared strings, styles and workbook parts whole, so their size bounds the
# memory it needs. A county form's parts are a few kilobytes; worksheets are streamed instead.
_MAX_PART_BYTES = 64 * 1024 * 1024
_MAX_MEMBERS = 10_000

TOO_LARGE_REASON = "附件中的Excel文件内容过大，无法读取。请只保留附件二统计表，另存后重新发送。"

_OFFICE_DOCUMENT = "/officeDocument"


def check_package(archive: zipfile.ZipFile) -> None:
    """Raise UnreadableFile when a part that openpyxl loads whole is too large to read safely.

    The sizes are those declared in the ZIP directory. Python's zipfile stops reading a member at
    its declared size, so a part cannot inflate past it.
    """
    members = archive.infolist()
    if len(members) > _MAX_MEMBERS:
        raise UnreadableFile(f"xlsx: package has {len(members)} parts", TOO_LARGE_REASON)

    for member in members:
        streamed = member.filename.startswith("xl/worksheets/")
        if not streamed and member.file_size > _MAX_PART_BYTES:
            raise UnreadableFile(f"xlsx: part {member.filename} is {member.file_size} bytes", TOO_LARGE_REASON)


def sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Return the worksheet part of each sheet name, such as ``{"Sheet1": "xl/worksheets/sheet1.xml"}``.

    Returns an empty mapping when the package's relationships cannot be followed.
    """
    try:
        workbook = _target(_relationships(archive, "_rels/.rels", ""), _OFFICE_DOCUMENT)
        if workbook is None:
            return {}
        folder = posixpath.dirname(workbook)
        rels_name = posixpath.join(folder, "_rels", posixpath.basename(workbook) + ".rels")
        targets = {rid: target for rid, (_, target) in _relationships(archive, rels_name, folder).items()}
        root = fromstring(archive.read(workbook))
    except (KeyError, ValueError, ParseError, zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, OSError) as err:
        logger.info("xlsx: cannot follow the workbook's relationships: %s", err)
        return {}

    parts = {}
    for element in root.iter():
        if _local(element.tag) != "sheet":
            continue
        rid = next((value for key, value in element.attrib.items() if _local(key) == "id"), None)
        if rid in targets and element.get("name") is not None:
            parts[element.get("name")] = targets[rid]
    return parts


def _relationships(archive: zipfile.ZipFile, name: str, folder: str) -> dict[str, tuple[str, str]]:
    """Return each relationship's Id mapped to its type and its target's part name."""
    relationships = {}
    for element in fromstring(archive.read(name)).iter():
        if _local(element.tag) != "Relationship" or element.get("TargetMode") == "External":
            continue
        target = element.get("Target", "")
        # Targets are relative to the source part's folder unless they start with "/", which
        # some writers use.
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        relationships[element.get("Id")] = (element.get("Type", ""), part)
    return relationships


def _target(relationships: dict[str, tuple[str, str]], type_suffix: str) -> str | None:
    return next((part for kind, part in relationships.values() if kind.endswith(type_suffix)), None)


def uncached_formulas(archive: zipfile.ZipFile, part: str, max_row: int) -> dict[Position, str]:
    """Return the formulas saved without a result in the worksheet's first ``max_row`` rows.

    A shared formula (``<f t="shared" si="0"/>``) is translated from its master cell, which
    precedes it in the sheet. Raises UnreadableFile when such a formula has no text to compute.
    """
    formulas: dict[Position, str] = {}
    shared: dict[str, tuple[str, str]] = {}
    row_number = 0
    column_number = 0
    parent = None

    with archive.open(part) as stream:
        for event, element in iterparse(stream, events=("start", "end")):
            tag = _local(element.tag)
            if event == "start":
                if tag == "sheetData":
                    parent = element
                elif tag == "row":
                    row_number = int(element.get("r") or row_number + 1)
                    column_number = 0
                    if row_number > max_row:
                        break
                continue

            if tag == "c":
                row_number, column_number = _position(element, row_number, column_number)
                formula = _uncached_formula(element, row_number, column_number, shared)
                if formula is not None:
                    formulas[(row_number, column_number)] = formula
            elif tag == "row" and parent is not None:
                # Dropping finished rows keeps memory flat however long the sheet is.
                parent.remove(element)
    return formulas


def _position(cell, row_number: int, column_number: int) -> tuple[int, int]:
    reference = cell.get("r")
    if reference:
        return coordinate_to_tuple(reference)
    # The r attribute is optional (ECMA-376 Part 1, 18.3.1.4): the cell follows the previous one.
    return row_number, column_number + 1


def _uncached_formula(cell, row: int, column: int, shared: dict[str, tuple[str, str]]) -> str | None:
    children = {_local(child.tag): child for child in cell}
    formula = children.get("f")
    if formula is None:
        return None

    coordinate = f"{get_column_letter(column)}{row}"
    text = formula.text or ""
    if formula.get("t") == "shared" and text:
        shared[formula.get("si", "")] = (text, coordinate)

    if _has_cached_result(cell, children):
        return None

    if formula.get("t") == "shared" and not text:
        text = _translate_shared(shared.get(formula.get("si", "")), coordinate)
    if not text:
        raise UnreadableFile(f"xlsx: formula at {coordinate} has neither text nor a cached result", FORMULA_REASON)
    return text


def _has_cached_result(cell, children: dict) -> bool:
    # Excel writes an empty text result as <v></v> in a t="str" cell. openpyxl and similar
    # writers put an empty <v></v> in a numeric cell, which means no result at all.
    # NOTE: XlsxWriter stores 0 as every formula's result unless told otherwise; such a file
    # reads as zeros, which the rules then report.
    value = children.get("v")
    if "is" in children:
        return True
    if value is None:
        return False
    return bool(value.text) or cell.get("t") in ("str", "s", "inlineStr")


def _translate_shared(master: tuple[str, str] | None, coordinate: str) -> str:
    if master is None:
        raise UnreadableFile(f"xlsx: shared formula at {coordinate} has no master cell", FORMULA_REASON)
    text, origin = master
    try:
        return Translator("=" + text, origin=origin).translate_formula(coordinate)
    except TranslatorError as err:
        raise UnreadableFile(f"xlsx: cannot translate shared formula to {coordinate}: {err}", FORMULA_REASON) from err


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
