"""LibreOfficeConverter with the real LibreOffice, and with stand-in programs for its failures.

The .doc, .wps and .et inputs are made at test time by converting the builders' .docx and
.xlsx with soffice; the tests that need LibreOffice skip when it is not installed.
"""

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.convert import LibreOfficeConverter, find_libreoffice
from ingest.errors import UnreadableFile
from ingest.locate import locate_tables
from ingest.readers import read_grids
from ingest.sniff import sniff_kind
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx

DOC_REASON = "这是旧版 Word 或 WPS 文字文件（.doc/.wps），暂时无法读取。请在 Word 或 WPS 中“另存为”.docx 格式后重新发送。"
ET_REASON = "这是 WPS 表格文件（.et），暂时无法读取。请在 WPS 或 Excel 中“另存为”.xlsx 格式后重新发送。"
FAILED_DOC_REASON = "这个 Word 或 WPS 文件无法打开，可能已损坏。请在 Word 或 WPS 中“另存为”.docx 格式后重新发送。"
FAILED_ET_REASON = "这个 WPS 表格文件无法打开，可能已损坏。请在 WPS 或 Excel 中“另存为”.xlsx 格式后重新发送。"

# A Word document (flat ODF) showing an image that is only linked, never embedded.
LINKED_IMAGE_FODT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 xmlns:xlink="http://www.w3.org/1999/xlink"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
 office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.text">
<office:body><office:text><text:p>填报乡镇（单位）：水定镇<draw:frame draw:name="logo" svg:width="2cm"
 svg:height="2cm" text:anchor-type="as-char"><draw:image xlink:href="{url}" xlink:type="simple"
 xlink:show="embed" xlink:actuate="onLoad"/></draw:frame></text:p></office:text></office:body>
</office:document>
"""


def soffice_convert(soffice: str, work: Path, source: Path, target: str) -> bytes:
    """Convert ``source`` with a plain soffice call, as a clerk's machine would save the file."""
    profile = work / f"profile-{source.stem}-{target}"
    subprocess.run(
        [soffice, "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
         "--convert-to", target, "--outdir", str(work / "out"), str(source)],
        check=True, capture_output=True, timeout=120,
    )
    return (work / "out" / f"{source.stem}.{target}").read_bytes()


@pytest.fixture(scope="session")
def old_files(soffice, tmp_path_factory) -> dict[str, bytes]:
    """Word 97 and Excel 97 bytes made from the builders: the formats of .doc, .wps and .et."""
    work = tmp_path_factory.mktemp("old-files")
    (work / "table.docx").write_bytes(build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇", reporter="王芳"))
    (work / "table.xlsx").write_bytes(build_xlsx([SAMPLE_ROWS["r1_broken"]], unit="三道河乡"))
    return {
        "doc": soffice_convert(soffice, work, work / "table.docx", "doc"),
        "xls": soffice_convert(soffice, work, work / "table.xlsx", "xls"),
    }


@pytest.fixture(scope="session")
def converted(soffice, old_files) -> dict[str, tuple[bytes, str]]:
    converter = LibreOfficeConverter(soffice)
    return {
        "doc": converter.convert(old_files["doc"], "doc"),
        "wps": converter.convert(old_files["doc"], "wps"),
        "et": converter.convert(old_files["xls"], "et"),
    }


class LinkServer:
    """An HTTP server on 127.0.0.1 that records every request and answers 404."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (name fixed by http.server)
                server.requests.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/logo.png"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture(scope="session")
def link_server() -> Iterator[LinkServer]:
    server = LinkServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def linked_doc(soffice, link_server, tmp_path_factory) -> bytes:
    """A .doc whose image is a link to the local server."""
    work = tmp_path_factory.mktemp("linked")
    source = work / "linked.fodt"
    source.write_text(LINKED_IMAGE_FODT.format(url=link_server.url), encoding="utf-8")
    return soffice_convert(soffice, work, source, "doc")


def fake_soffice(directory: Path, body: str) -> str:
    """Write an executable shell script standing in for soffice and return its path."""
    script = directory / "soffice"
    script.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def process_alive(pid: int) -> bool:
    # A killed process whose parent has not reaped it yet is a zombie (state Z): it is dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_dead(pid: int, seconds: float = 3) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return False


# Real LibreOffice.

@pytest.mark.parametrize("kind, result", [("doc", "docx"), ("wps", "docx"), ("et", "xlsx")])
def test_result_kind(converted, kind, result):
    assert converted[kind][1] == result


@pytest.mark.parametrize("kind", ["doc", "wps", "et"])
def test_result_bytes_sniffed(converted, kind):
    data, result = converted[kind]
    assert sniff_kind(data, None) == result


@pytest.mark.parametrize("kind, unit", [("doc", "清水河镇"), ("wps", "清水河镇"), ("et", "三道河乡")])
def test_converted_table_unit(converted, kind, unit):
    data, result = converted[kind]
    assert locate_tables(read_grids(data, result))[0].header.unit_text == unit


@pytest.mark.parametrize("kind, value", [("doc", "892"), ("et", 488)])
def test_converted_table_value(converted, kind, value):
    # Column 7 (本周合计人次); Word cells are text, spreadsheet cells numbers.
    data, result = converted[kind]
    assert locate_tables(read_grids(data, result))[0].rows[0].cells[7].value == value


def test_damaged_doc_reason(soffice):
    damaged = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    with pytest.raises(UnreadableFile) as caught:
        LibreOfficeConverter(soffice).convert(damaged, "doc")
    assert caught.value.reason == FAILED_DOC_REASON


def test_work_directory_removed(soffice, old_files, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    LibreOfficeConverter(soffice).convert(old_files["xls"], "et")
    assert list(tmp_path.iterdir()) == []


def test_linked_image_is_live(soffice, linked_doc, link_server, tmp_path):
    # The premise of the network tests: a plain soffice call fetches the linked image.
    (tmp_path / "linked.doc").write_bytes(linked_doc)
    link_server.requests.clear()
    soffice_convert(soffice, tmp_path, tmp_path / "linked.doc", "docx")
    assert link_server.requests != []


@pytest.mark.parametrize("isolate_network", [True, False])
def test_linked_image_not_fetched(soffice, linked_doc, link_server, isolate_network):
    link_server.requests.clear()
    LibreOfficeConverter(soffice, isolate_network=isolate_network).convert(linked_doc, "doc")
    assert link_server.requests == []


# Without LibreOffice.

@pytest.mark.parametrize("kind, reason", [("doc", DOC_REASON), ("wps", DOC_REASON), ("et", ET_REASON)])
def test_missing_libreoffice_reason(tmp_path, kind, reason):
    converter = LibreOfficeConverter(str(tmp_path / "soffice"))
    with pytest.raises(UnreadableFile) as caught:
        converter.convert(b"\xd0\xcf\x11\xe0", kind)
    assert caught.value.reason == reason


def test_missing_binary_not_available(tmp_path):
    assert LibreOfficeConverter(str(tmp_path / "soffice")).available is False


def test_script_available(tmp_path):
    assert LibreOfficeConverter(fake_soffice(tmp_path, "exit 0\n")).available is True


def test_find_libreoffice_on_path(tmp_path, monkeypatch):
    script = fake_soffice(tmp_path, "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_libreoffice() == script


def test_other_kind_rejected(tmp_path):
    with pytest.raises(ValueError):
        LibreOfficeConverter(fake_soffice(tmp_path, "exit 0\n")).convert(b"PK", "xlsx")


# Stand-in programs for LibreOffice's failures.

def test_exit_status_reason(tmp_path):
    converter = LibreOfficeConverter(fake_soffice(tmp_path, "echo broken >&2\nexit 1\n"))
    with pytest.raises(UnreadableFile) as caught:
        converter.convert(b"\xd0\xcf\x11\xe0", "et")
    assert caught.value.reason == FAILED_ET_REASON


def test_no_output_reason(tmp_path):
    converter = LibreOfficeConverter(fake_soffice(tmp_path, "exit 0\n"))
    with pytest.raises(UnreadableFile) as caught:
        converter.convert(b"\xd0\xcf\x11\xe0", "doc")
    assert caught.value.reason == FAILED_DOC_REASON


def test_fresh_profile_per_conversion(tmp_path):
    log = tmp_path / "arguments.log"
    converter = LibreOfficeConverter(fake_soffice(tmp_path, f'for a in "$@"; do echo "$a"; done >> {log}\n'))
    for _ in range(2):
        with pytest.raises(UnreadableFile):
            converter.convert(b"\xd0\xcf\x11\xe0", "doc")
    profiles = [line for line in log.read_text().splitlines() if line.startswith("-env:UserInstallation=")]
    assert len(set(profiles)) == 2


def test_profile_has_proxy_settings(tmp_path):
    copy = tmp_path / "copied.xcu"
    body = ('for a in "$@"; do case "$a" in -env:UserInstallation=file://*) '
            f'cp "${{a#-env:UserInstallation=file://}}/user/registrymodifications.xcu" {copy};; esac; done\n')
    with pytest.raises(UnreadableFile):
        LibreOfficeConverter(fake_soffice(tmp_path, body)).convert(b"\xd0\xcf\x11\xe0", "doc")
    assert '<prop oor:name="ooInetHTTPProxyPort" oor:op="fuse"><value>9</value>' in copy.read_text()


class TestTimeout:
    """A stand-in that starts a child and hangs, as soffice.bin does on a pathological file."""

    @pytest.fixture(scope="class")
    def hung(self, tmp_path_factory) -> dict:
        tmp_path = tmp_path_factory.mktemp("hung")
        body = (f"sleep 300 &\necho $! > {tmp_path}/child.pid\necho $$ > {tmp_path}/leader.pid\n"
                "sleep 300\n")
        converter = LibreOfficeConverter(fake_soffice(tmp_path, body), timeout=1)
        started = time.monotonic()
        with pytest.raises(UnreadableFile) as caught:
            converter.convert(b"\xd0\xcf\x11\xe0", "doc")
        return {
            "seconds": time.monotonic() - started,
            "reason": caught.value.reason,
            "leader": int((tmp_path / "leader.pid").read_text()),
            "child": int((tmp_path / "child.pid").read_text()),
        }

    def test_returns_after_timeout(self, hung):
        assert hung["seconds"] < 5

    def test_reason(self, hung):
        assert hung["reason"] == FAILED_DOC_REASON

    def test_leader_killed(self, hung):
        assert wait_dead(hung["leader"])

    def test_child_killed(self, hung):
        assert wait_dead(hung["child"])
