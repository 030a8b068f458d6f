"""The ``materials`` command: list the units' 总结材料 and save their files out of the archive.

Summary files are kept inside the archived mail's bytes, so saving them parses each mail again
and writes the attachments whose SHA-256 the record lists, under one folder per unit.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ingest.message import parse_message
from notify.render import format_size
from store import repository
from store.models import SummaryMaterial
from store.session import Database

logger = logging.getLogger(__name__)


def materials_as_text(database: Database, tz) -> str:
    """Return one block per recorded summary mail, oldest first, in Chinese."""
    with database.session() as session:
        records = repository.list_summaries(session)
        if not records:
            return "尚未收到总结材料。"
        return "\n\n".join(_block(record, tz) for record in records)


def _block(record: SummaryMaterial, tz) -> str:
    local = record.received_at.astimezone(tz)
    lines = [f"{record.unit.name}  {local.year}年{local.month}月{local.day}日 {local:%H:%M}收到（邮件 #{record.message_id}）"]
    lines += [f"  文件：{item['name']}（{format_size(int(item['size']))}）" for item in record.files]
    lines += [f"  下载链接：{link}" for link in record.links]
    return "\n".join(lines)


def save_materials(database: Database, folder: Path) -> list[Path]:
    """Write every recorded summary file to ``folder/单位/文件名`` and return the paths written.

    A file already there with the same bytes is left alone. A different file of the same name
    gets the mail's number in front, so nothing is overwritten.
    """
    written = []
    with database.session() as session:
        for record in repository.list_summaries(session):
            kept = {str(item["sha256"]) for item in record.files}
            mail = parse_message(record.message.raw)
            for attachment in mail.attachments:
                if hashlib.sha256(attachment.data).hexdigest() not in kept:
                    continue
                path = _target(folder / record.unit.name, attachment.filename or "未命名文件", record.message_id,
                               attachment.data)
                if path is not None:
                    path.write_bytes(attachment.data)
                    written.append(path)
    return written


def _target(folder: Path, name: str, message_id: int, data: bytes) -> Path | None:
    """Return where to write ``data`` named ``name``, or None when the same file is there already."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = Path(name).name or "未命名文件"
    for candidate in (folder / safe, folder / f"{message_id}-{safe}"):
        if not candidate.exists():
            return candidate
        if candidate.read_bytes() == data:
            return None
    logger.warning("materials: %s exists twice with other bytes, mail #%d's copy not saved", safe, message_id)
    return None
