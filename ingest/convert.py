"""Convert old Word and WPS files to .docx and .xlsx with LibreOffice, when it is installed.

Clerks on old machines save the table as Word 97 (.doc), WPS 文字 (.wps) or WPS 表格 (.et).
zhoubao reads none of these itself: ``soffice --headless --convert-to`` turns them into .docx or
.xlsx, which the readers understand. Each conversion runs in a temporary directory with its own
LibreOffice profile, because two soffice processes sharing a profile fail without an error
message. The process runs in its own session and its whole process group is killed on timeout,
because soffice starts soffice.bin as a child. Links inside the file, such as an image on a web
server, must not reach the network. So the process gets an empty network namespace when
``unshare`` can create one, and its profile sends every HTTP, HTTPS and FTP request to a closed
local port.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ingest.errors import UnreadableFile

logger = logging.getLogger(__name__)

# Debian and Ubuntu package LibreOffice without its GUI in these two packages.
INSTALL_COMMAND = "apt-get install -y --no-install-recommends libreoffice-calc-nogui libreoffice-writer-nogui"
INSTALL_HINT = (
    "服务器未安装 LibreOffice，无法读取旧版 Word（.doc）和 WPS（.wps、.et）文件，"
    f"已请发件人另存为 .docx 或 .xlsx 后重新发送。安装方法（Debian/Ubuntu）：{INSTALL_COMMAND}"
)

# kind -> (name of the input file, export filter, kind of the result). Kingsoft WPS saves .wps
# and .et in the Word 97 and Excel 97 formats, so the input gets the matching extension.
# NOTE: tested with LibreOffice's own Word 97 and Excel 97 output only, not with WPS files.
_TARGETS = {
    "doc": ("input.doc", "docx:MS Word 2007 XML", "docx"),
    "wps": ("input.doc", "docx:MS Word 2007 XML", "docx"),
    "et": ("input.xls", "xlsx:Calc MS Excel 2007 XML", "xlsx"),
}

_WORD_REASON = "这是旧版 Word 或 WPS 文字文件（.doc/.wps），暂时无法读取。请在 Word 或 WPS 中“另存为”.docx 格式后重新发送。"
_SHEET_REASON = "这是 WPS 表格文件（.et），暂时无法读取。请在 WPS 或 Excel 中“另存为”.xlsx 格式后重新发送。"
_FAILED_WORD_REASON = "这个 Word 或 WPS 文件无法打开，可能已损坏。请在 Word 或 WPS 中“另存为”.docx 格式后重新发送。"
_FAILED_SHEET_REASON = "这个 WPS 表格文件无法打开，可能已损坏。请在 WPS 或 Excel 中“另存为”.xlsx 格式后重新发送。"

# Profile settings written before the first start. A manual proxy on the discard port (9) makes
# every HTTP, HTTPS and FTP request fail at once. DisableMacrosExecution turns macros off.
_PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Inet/Settings"><prop oor:name="ooInetProxyType" oor:op="fuse"><value>2</value></prop></item>
<item oor:path="/org.openoffice.Inet/Settings"><prop oor:name="ooInetNoProxy" oor:op="fuse"><value></value></prop></item>
<item oor:path="/org.openoffice.Inet/Settings"><prop oor:name="ooInetHTTPProxyName" oor:op="fuse"><value>127.0.0.1</value></prop></item>
<item oor:path="/org.openoffice.Inet/Settings"><prop oor:name="ooInetHTTPProxyPort" oor:op="fuse"><value>9</value></prop></item>
<item oor:path="/org.openoffice.Inet/Settings"><prop oor:name="ooInetHTTPSProxyName" oor:op="fuse"><value>127.0.0.1</value></prop></item>
<item oor:path="/org.openoffice.Inet/Settings"><prop oor:name="ooInetHTTPSProxyPort" oor:op="fuse"><value>9</value></prop></item>
<item oor:path="/org.openoffice.Inet/Settings"><prop oor:name="ooInetFTPProxyName" oor:op="fuse"><value>127.0.0.1</value></prop></item>
<item oor:path="/org.openoffice.Inet/Settings"><prop oor:name="ooInetFTPProxyPort" oor:op="fuse"><value>9</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop></item>
</oor:items>
"""

# Install locations of soffice outside PATH: the official Linux packages and the macOS bundle.
_KNOWN_LOCATIONS = (
    "/usr/lib/libreoffice/program/soffice",
    "/opt/libreoffice*/program/soffice",
    "/Applications/LibreOffice.app/Contents/MacOS/soffice",
)


def find_libreoffice() -> str | None:
    """Return the path of the soffice program, or None when LibreOffice is not installed."""
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found

    for pattern in _KNOWN_LOCATIONS:
        for path in sorted(glob.glob(pattern), reverse=True):
            if os.access(path, os.X_OK):
                return path
    return None


class LibreOfficeConverter:
    """Converts .doc and .wps to .docx and .et to .xlsx with headless LibreOffice.

    ``binary`` is the soffice program (found on PATH when None). ``timeout`` is in seconds.
    ``isolate_network`` runs soffice in an empty network namespace whenever ``unshare`` can
    create one; the profile's proxy settings apply either way.
    """

    def __init__(self, binary: str | None = None, timeout: float = 60, *, isolate_network: bool = True):
        self.binary = binary or find_libreoffice()
        self.timeout = timeout
        self.isolate_network = isolate_network

    def __repr__(self) -> str:
        return f"converter {self.binary or '(LibreOffice not installed)'}"

    @property
    def available(self) -> bool:
        """True when the soffice program exists and can be run."""
        return self.binary is not None and os.access(self.binary, os.X_OK)

    def convert(self, data: bytes, kind: str) -> tuple[bytes, str]:
        """Convert a "doc", "wps" or "et" file; return the new bytes and their kind.

        Raises UnreadableFile with a Chinese reason when LibreOffice is missing, fails, produces
        nothing or runs longer than ``timeout``.
        """
        if kind not in _TARGETS:
            raise ValueError(f"{self!r}: cannot convert kind {kind!r}")
        input_name, export_filter, result_kind = _TARGETS[kind]

        if not self.available:
            raise UnreadableFile(f"{self!r}: LibreOffice not installed", _unavailable_reason(result_kind))

        with tempfile.TemporaryDirectory(prefix="zhoubao-soffice-") as workdir:
            work = Path(workdir)
            source = work / input_name
            source.write_bytes(data)
            _write_profile(work / "profile")

            self._run(work, source, export_filter, result_kind)

            output = work / "out" / (source.stem + "." + result_kind)
            if not output.is_file() or output.stat().st_size == 0:
                raise UnreadableFile(f"{self!r}: no {result_kind} written for {kind}", _failed_reason(result_kind))
            logger.info("%r: converted %s to %s (%d -> %d bytes)", self, kind, result_kind,
                        len(data), output.stat().st_size)
            return output.read_bytes(), result_kind

    def _run(self, work: Path, source: Path, export_filter: str, result_kind: str) -> None:
        command = [
            *self._network_prefix(),
            str(self.binary),
            "--headless",
            "--norestore",
            "--nologo",
            "--nolockcheck",
            f"-env:UserInstallation={(work / 'profile').as_uri()}",
            "--convert-to",
            export_filter,
            "--outdir",
            str(work / "out"),
            str(source),
        ]
        # HOME points into the work directory, so files soffice writes under HOME are removed.
        environment = {**os.environ, "HOME": str(work)}
        with subprocess.Popen(command, cwd=work, env=environment, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True) as process:
            try:
                stdout, stderr = process.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired as err:
                logger.warning("%r: timed out after %s s converting %s", self, self.timeout, source.name)
                raise UnreadableFile(f"{self!r}: timed out after {self.timeout} s",
                                     _failed_reason(result_kind)) from err
            finally:
                # On timeout or interrupt the leader still runs (and is not reaped), so its group
                # id still names soffice.bin and its helpers.
                if process.returncode is None:
                    _kill_group(process)

        if process.returncode != 0:
            logger.warning("%r: exit status %d: %s", self, process.returncode, _tail(stderr or stdout))
            raise UnreadableFile(f"{self!r}: exit status {process.returncode}", _failed_reason(result_kind))
        logger.debug("%r: %s", self, _tail(stdout))

    def _network_prefix(self) -> list[str]:
        return list(_unshare_prefix()) if self.isolate_network else []


@functools.cache
def _unshare_prefix() -> tuple[str, ...]:
    """Return the unshare command that creates an empty network namespace here, or ().

    Probed once per process, because the service builds a converter for every mail.
    """
    unshare = shutil.which("unshare")
    # Root can create the namespace directly; other users need a user namespace as well.
    candidates = [] if unshare is None else [(unshare, "--net", "--"), (unshare, "--map-root-user", "--net", "--")]
    for prefix in candidates:
        try:
            result = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            logger.debug("unshare: %s failed: %s", prefix, err)
            continue
        if result.returncode == 0:
            return prefix

    logger.warning("converter: no network namespace available (unshare missing or not permitted); "
                   "LibreOffice is kept off the network by its profile's proxy settings only")
    return ()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and every process in the group it leads; Popen's exit reaps it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        # The leader has exited and no process is left in its group.
        pass


def _write_profile(profile: Path) -> None:
    user = profile / "user"
    user.mkdir(parents=True)
    (user / "registrymodifications.xcu").write_text(_PROFILE_SETTINGS, encoding="utf-8")


def _unavailable_reason(result_kind: str) -> str:
    return _WORD_REASON if result_kind == "docx" else _SHEET_REASON


def _failed_reason(result_kind: str) -> str:
    return _FAILED_WORD_REASON if result_kind == "docx" else _FAILED_SHEET_REASON


def _tail(output: bytes | None) -> str:
    return (output or b"").decode("utf-8", errors="replace").strip()[-500:]
