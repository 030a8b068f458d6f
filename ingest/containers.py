"""Unpack the containers a table arrives in: zip archives and attached mails (.eml).

Clerks zip the table, zip a folder holding it, or forward the mail that carried it as an .eml
file. :func:`expand_files` replaces each such container by the files inside it and leaves every
other attachment as it is. Archives are untrusted input, so each one is checked against
:class:`Limits` before anything is decompressed, and an archive over a limit yields no files but
one :class:`~ingest.table.FileProblem` for the reply.
"""

from __future__ import annotations

import io
import logging
import lzma
import mimetypes
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, replace

from ingest.errors import ZhoubaoError
from ingest.message import MAX_MESSAGE_DEPTH, TOO_DEEP_REASON, Attachment, html_body_file, parse_message
from ingest.sniff import sniff_kind
from ingest.table import FileProblem

logger = logging.getLogger(__name__)

MIB = 1024 * 1024

# APPNOTE.TXT 4.4.4: general purpose bit 0 marks an encrypted entry, bit 11 a UTF-8 name.
_ENCRYPTED_FLAG = 0x1
_UTF8_FLAG = 0x800

# A member smaller than this cannot exhaust memory whatever its ratio, and a short run of
# identical bytes (an empty sheet) legitimately deflates several hundred times.
RATIO_FLOOR_BYTES = 1 * MIB

ENCRYPTED_ZIP_REASON = "压缩包设置了密码，请去掉密码或直接发送表格文件。"
NESTED_ZIP_REASON = "压缩包里的压缩包中又套了压缩包，无法读取。请解压后直接发送表格文件。"
DAMAGED_ZIP_REASON = "压缩包已损坏，无法解压。请重新压缩后发送，或直接发送表格文件。"
METHOD_REASON = "压缩包使用了无法读取的压缩方式。请改用 zip 格式重新压缩，或直接发送表格文件。"
EMPTY_ZIP_REASON = "压缩包里没有文件。请直接发送填好的统计表文件。"
EMPTY_MAIL_REASON = "附件中的邮件里没有附件，也没有表格。请直接把统计表文件作为附件发送。"
OTHER_ARCHIVE_REASONS = {
    "rar": "这是 RAR 压缩包，无法读取。请直接发送表格文件，或改用 zip 格式压缩。",
    "7z": "这是 7z 压缩包，无法读取。请直接发送表格文件，或改用 zip 格式压缩。",
}

# Entries that archivers add beside the files: macOS resource forks and Finder data, Windows
# thumbnail caches, and the lock file Office leaves while the table is open ("~$表.xlsx").
_JUNK_DIRECTORIES = ("__MACOSX/",)
_JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
_JUNK_PREFIXES = ("._", "~$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Limits:
    """Bounds on what the attachments of one mail may unpack to.

    ``max_members`` counts the files in one archive, ``max_total_bytes`` the uncompressed bytes
    of every archive in the mail together, and ``max_ratio`` the uncompressed size of one member
    over its compressed size. ``max_depth`` caps mails inside mails, as in
    :func:`ingest.message.parse_message`.
    """

    max_members: int = 50
    max_total_bytes: int = 100 * MIB
    max_ratio: int = 200
    max_depth: int = MAX_MESSAGE_DEPTH


class _ArchiveRejected(ZhoubaoError):
    """An archive broke a limit or could not be read; ``problem`` goes into the reply."""

    def __init__(self, problem: FileProblem):
        super().__init__(problem.reason)
        self.problem = problem


def expand_files(attachments: list[Attachment],
                 limits: Limits | None = None) -> tuple[list[Attachment], list[FileProblem]]:
    """Replace zip and .eml attachments by the files inside them.

    Returns the files to read, in the order found, and the problems of the containers that
    could not be opened (.rar, .7z, encrypted or damaged zips, archives over ``limits``). A
    file from inside a container is named after its path, for example ``第3周.zip/水定镇.xlsx``.
    """
    expansion = _Expansion(limits or Limits())
    for attachment in attachments:
        expansion.add(attachment, level=0, zip_level=0)
    return expansion.files, expansion.problems


class _Expansion:
    """State of one mail's expansion: the files and problems found so far and the bytes left."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.files: list[Attachment] = []
        self.problems: list[FileProblem] = []
        self.budget = limits.max_total_bytes

    def add(self, attachment: Attachment, *, level: int, zip_level: int) -> None:
        """Add one attachment; ``level`` counts the mails around it and ``zip_level`` the zips."""
        if attachment.kind == "zip":
            self._add_zip(attachment, level=level, zip_level=zip_level)
        elif attachment.kind == "eml":
            self._add_mail(attachment, level=level + 1, zip_level=zip_level)
        elif attachment.kind in OTHER_ARCHIVE_REASONS:
            self._reject(attachment.filename, OTHER_ARCHIVE_REASONS[attachment.kind])
        else:
            self.files.append(attachment)

    def _add_zip(self, attachment: Attachment, *, level: int, zip_level: int) -> None:
        if zip_level >= 2:
            self._reject(attachment.filename, NESTED_ZIP_REASON)
            return

        try:
            members = self._unzip(attachment)
        except _ArchiveRejected as err:
            logger.warning("zip %r: not unpacked: %s", attachment.filename, err.problem.reason)
            self.problems.append(err.problem)
            return

        logger.info("zip %r: %d file(s) unpacked", attachment.filename, len(members))
        if not members:
            self._reject(attachment.filename, EMPTY_ZIP_REASON)
        for member in members:
            self.add(member, level=level, zip_level=zip_level + 1)

    def _add_mail(self, attachment: Attachment, *, level: int, zip_level: int) -> None:
        if level > self.limits.max_depth:
            self._reject(attachment.filename, TOO_DEEP_REASON)
            return

        mail = parse_message(attachment.data, max_depth=self.limits.max_depth - level)
        logger.info("mail file %r: %d attachment(s)", attachment.filename, len(mail.attachments))
        self.problems.extend(_inside(attachment.filename, problem) for problem in mail.problems)

        body = html_body_file(mail.subject, mail.body_html)
        inner = mail.attachments + ([body] if body is not None else [])
        if not inner and not mail.problems:
            self._reject(attachment.filename, EMPTY_MAIL_REASON)
        for item in inner:
            named = replace(item, filename=f"{attachment.filename}/{item.filename}")
            self.add(named, level=level, zip_level=zip_level)

    def _unzip(self, attachment: Attachment) -> list[Attachment]:
        name = attachment.filename
        try:
            with zipfile.ZipFile(io.BytesIO(attachment.data)) as archive:
                members = [info for info in archive.infolist() if not _is_junk(info)]
                self._check(name, members)
                return [self._extract(archive, info, name) for info in members]
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
            # ValueError: a corrupt central directory can make zipfile seek to a negative offset.
            logger.info("zip %r: damaged: %s", name, err)
            raise _ArchiveRejected(FileProblem(name, DAMAGED_ZIP_REASON)) from err

    def _check(self, name: str, members: list[zipfile.ZipInfo]) -> None:
        """Raise _ArchiveRejected when the central directory shows a limit broken."""
        limits = self.limits
        if len(members) > limits.max_members:
            raise _ArchiveRejected(FileProblem(name, (
                f"压缩包内有 {len(members)} 个文件，超过可读取的上限（{limits.max_members} 个）。"
                "请直接发送统计表文件，或只把统计表放进压缩包。"
            )))

        if any(info.flag_bits & _ENCRYPTED_FLAG for info in members):
            raise _ArchiveRejected(FileProblem(name, ENCRYPTED_ZIP_REASON))

        for info in members:
            if info.file_size >= RATIO_FLOOR_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise _ArchiveRejected(FileProblem(name, (
                    f"压缩包中的“{_member_name(info)}”解压后是压缩前的 {limits.max_ratio} 倍以上，"
                    "为安全起见没有解压。请直接发送统计表文件。"
                )))

        total = sum(info.file_size for info in members)
        if total > self.budget:
            raise _ArchiveRejected(FileProblem(name, (
                f"压缩包解压后超过 {limits.max_total_bytes // MIB} MB，超过可读取的上限。"
                "请直接发送统计表文件。"
            )))

    def _extract(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, archive_name: str) -> Attachment:
        name = f"{archive_name}/{_member_name(info)}"
        try:
            with archive.open(info) as member:
                # zipfile stops at the declared size and checks the CRC there, so a member whose
                # data is longer than its central directory entry claims fails as damaged.
                data = member.read(info.file_size + 1)
        except NotImplementedError as err:
            # Compression methods zipfile lacks, such as Deflate64 or PPMd.
            raise _ArchiveRejected(FileProblem(archive_name, METHOD_REASON)) from err
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError) as err:
            raise _ArchiveRejected(FileProblem(archive_name, DAMAGED_ZIP_REASON)) from err

        if len(data) > info.file_size:
            raise _ArchiveRejected(FileProblem(archive_name, DAMAGED_ZIP_REASON))
        self.budget -= len(data)

        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Attachment(filename=name, data=data, content_type=content_type, kind=sniff_kind(data, name))

    def _reject(self, file_name: str, reason: str) -> None:
        logger.info("attachment %r: not unpacked: %s", file_name, reason)
        self.problems.append(FileProblem(file_name, reason))


def _member_name(info: zipfile.ZipInfo) -> str:
    """Decode a member's path, which Chinese Windows writes in GBK without saying so.

    Without the UTF-8 flag, zipfile decodes the name as CP437, which maps every byte, so
    encoding back restores the bytes. Bytes that are valid UTF-8 are taken as UTF-8 (macOS
    Archive Utility writes UTF-8 without the flag), the others as GB18030, a superset of GBK.
    """
    name = info.orig_filename
    if not info.flag_bits & _UTF8_FLAG:
        raw = name.encode("cp437")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = raw.decode("gb18030", errors="replace")

    # Old Windows archivers write backslashes although APPNOTE.TXT 4.4.17 requires "/".
    name = unicodedata.normalize("NFC", _CONTROL.sub("", name)).replace("\\", "/")
    return name.strip("/")


def _is_junk(info: zipfile.ZipInfo) -> bool:
    if info.is_dir():
        return True
    name = _member_name(info)
    base = name.rsplit("/", 1)[-1]
    return (
        name.startswith(_JUNK_DIRECTORIES)
        or base.lower() in _JUNK_NAMES
        or base.startswith(_JUNK_PREFIXES)
        or not base
    )


def _inside(container: str, problem: FileProblem) -> FileProblem:
    return FileProblem(f"{container}/{problem.file_name}", problem.reason)
