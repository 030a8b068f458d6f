"""Properties: every mail, however its table or MIME tree is mangled, gets a clear outcome.

Hypothesis mutates valid weekly tables (values, layouts, bytes) and MIME trees (charsets,
transfer encodings, boundaries, nesting) and runs each mail through ``parse_message`` and
``decide``, as the intake does. Neither may raise, and the outcome must be one that stores a
report or replies to the sender with a reason. The examples are derandomized and bounded, so the
run is the same on every machine and stays under a minute.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import quopri
import zipfile
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from ingest.calendar import Campaign
from ingest.message import parse_message
from ingest.pipeline import Context, Decision, decide
from ingest.units import UnitDirectory, UnitSettings
from service.samples.mails import MailStyle, build_mail, build_mail_with_files, build_single_part_mail, build_zip
from service.samples.tables import (
    NOTICE,
    SAMPLE_ROWS,
    HeaderStyle,
    Layout,
    Numbering,
    WordWrapping,
    build_docx,
    build_xlsx,
)
from store.models import MessageOutcome
from tests.fixtures.service import COUNTY_ADDRESS, UNITS

# A failing example is a whole mail, and its repr over 30 kB makes Hypothesis warn, which the
# test run turns into an error that hides the real failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

BEIJING = ZoneInfo("Asia/Shanghai")

CONTEXT = Context(
    units=UnitDirectory(UnitSettings(name, tuple(aliases), tuple(emails)) for name, aliases, emails in UNITS),
    campaign=Campaign(
        first_deadline=dt.datetime(2023, 12, 8, 18, tzinfo=BEIJING),
        last_deadline=dt.datetime(2024, 3, 15, 18, tzinfo=BEIJING),
        timezone=BEIJING,
    ),
    own_addresses=frozenset({COUNTY_ADDRESS}),
    received_at=dt.datetime(2023, 12, 22, 16, 42, tzinfo=BEIJING),
)

CLEAR_OUTCOMES = frozenset({
    MessageOutcome.ACCEPTED,
    MessageOutcome.REJECTED,
    MessageOutcome.UNREADABLE,
    MessageOutcome.HELD,
    MessageOutcome.IGNORED,
})

# derandomize makes every run draw the same examples, and database=None keeps no state between
# runs, so a failure in CI is the failure seen locally. Shrinking is left out because it took
# over five minutes on one failing table; the failing example is reported as drawn.
PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    phases=[Phase.explicit, Phase.generate],
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SENDER = "shuiding_kx@163.com"
ATTACHMENT_STYLES = [style for style in MailStyle
                     if style not in (MailStyle.AUTOREPLY, MailStyle.NO_ATTACHMENT, MailStyle.BOUNCE)]


def assert_clear(decision: Decision) -> None:
    """Check that the decision stores a report or gives the sender or the admin a reason."""
    if currently_in_test_context():
        # Shown by pytest --hypothesis-show-statistics, to see that every outcome is reached.
        event(f"outcome {decision.outcome}: {decision.reason}")
    assert decision.outcome in CLEAR_OUTCOMES
    if decision.outcome in (MessageOutcome.ACCEPTED, MessageOutcome.REJECTED):
        assert decision.reports
    if decision.outcome is MessageOutcome.UNREADABLE:
        assert all(problem.reason for problem in decision.problems)
    if decision.outcome is MessageOutcome.HELD:
        assert decision.held_reason


def decide_raw(raw: bytes) -> Decision:
    return decide(parse_message(raw), CONTEXT)


# --- values and layouts ------------------------------------------------------------------------

# Text as clerks type it into number cells, and text that is no number at all.
WRITTEN_VALUES = ["", " ", "/", "—", "-", "无", "１２", "12场", "3,120人次", " 12 ", "1.5", "-3", "十二", "#REF!",
                  "=SUM(A1:A2)", "合计", "填表说明：", "0.0", "1e3", "٣"]

# Printable text only: openpyxl and python-docx refuse control characters, which a real file
# cannot hold either.
PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"))

cell_values = st.one_of(
    st.none(),
    st.integers(0, 100_000),
    st.integers(-1000, -1),
    st.floats(0, 10_000, allow_nan=False, allow_infinity=False),
    st.sampled_from(WRITTEN_VALUES),
    st.text(PRINTABLE, max_size=6),
)


@st.composite
def data_rows(draw) -> list[list[object]]:
    """Rows of 19 values: sample rows with up to four cells replaced, some with their cells shuffled."""
    count = draw(st.integers(0, 3))
    rows = []
    for _ in range(count):
        row = list(draw(st.sampled_from(sorted(SAMPLE_ROWS.values(), key=str))))
        for position in draw(st.lists(st.integers(0, 18), max_size=4)):
            row[position] = draw(cell_values)
        if draw(st.booleans()):
            row = draw(st.permutations(row))
        rows.append(row)
    return rows


@st.composite
def layouts(draw, rows: list[list[object]]) -> Layout:
    """A clerk's layout of the form for these rows; the builders need a 1 column for FROM_ONE."""
    numbering = draw(st.sampled_from(list(Numbering)))
    leading = draw(st.sampled_from([(), ("序号",), ("序号", "填报单位")]))
    if numbering is Numbering.FROM_ONE and not leading:
        leading = ("序号",)
    summable = all(value is None or isinstance(value, int) for row in rows for value in row)
    total = draw(st.one_of(
        st.just(False),
        st.just(summable),
        st.lists(cell_values, min_size=19, max_size=19),
    ))
    return Layout(
        leading=leading,
        trailing=draw(st.sampled_from([(), ("乡镇",)])),
        numbering=numbering,
        header=draw(st.sampled_from(list(HeaderStyle))),
        total=total,
        notice=draw(st.sampled_from([(), NOTICE])),
        origin=(draw(st.integers(1, 12)), draw(st.integers(1, 6))),
    )


units_written = st.sampled_from(["水定镇", "霍城县水定镇人民政府", "水定镇（盖章）", "清水河镇", "", "某某乡"])
dates_written = st.sampled_from(["2023年12月22日", "", "2023.12.22", "去年冬天", "2099-01-01", "2023年13月40日"])


@st.composite
def tables(draw, unit=units_written) -> bytes:
    """An .xlsx or .docx weekly table built by the sample builders from drawn parts."""
    rows = draw(data_rows())
    layout = draw(layouts(rows))
    unit_text = draw(unit)
    date_text = draw(dates_written)
    if draw(st.booleans()):
        return build_xlsx(rows, unit=unit_text, date_text=date_text, layout=layout, as_text=draw(st.booleans()))
    return build_docx(rows, unit=unit_text, date_text=date_text, layout=layout,
                      wrapping=draw(st.sampled_from(list(WordWrapping))))


# --- byte mutations ----------------------------------------------------------------------------


@st.composite
def mangled(draw, data: bytes) -> bytes:
    """The file cut short, with bytes overwritten, or with a zip member dropped, replaced or corrupt."""
    mutation = draw(st.sampled_from(["keep", "truncate", "overwrite", "drop_member", "garble_member",
                                     "corrupt_stream"]))
    if mutation == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if mutation == "overwrite":
        buffer = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            buffer[draw(st.integers(0, len(buffer) - 1))] = draw(st.integers(0, 255))
        return bytes(buffer)
    if mutation == "corrupt_stream":
        members = [info for info in zipfile.ZipFile(io.BytesIO(data)).infolist() if info.compress_size > 120]
        return _garbled_member(data, draw(st.sampled_from(members)).filename)
    if mutation in ("drop_member", "garble_member"):
        return _rezip(data, draw, drop=mutation == "drop_member")
    return data


def _rezip(data: bytes, draw, drop: bool) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    names = source.namelist()
    chosen = draw(st.sampled_from(names))
    garbage = draw(st.sampled_from([b"", b"<x", b"\xff\xfe\x00", b"<?xml version='1.0'?><worksheet/>"]))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for name in names:
            if name != chosen:
                target.writestr(name, source.read(name))
            elif not drop:
                target.writestr(name, garbage)
    return output.getvalue()


file_names = st.sampled_from(["水定镇第3周科技之冬周统计表.xlsx", "水定镇第3周.docx", "统计表", "第十五周统计表.xls",
                              "附件二.XLSX", "table.zip", "周报.et"])


@st.composite
def table_mails(draw) -> bytes:
    """A mail carrying a built table, possibly mangled, zipped or among other files."""
    data = draw(mangled(draw(tables())))
    name = draw(file_names)
    packing = draw(st.sampled_from(["style", "zip", "several", "single", "forwarded"]))
    if packing == "zip":
        return build_mail_with_files([("水定镇.zip", build_zip([(name, data)]))])
    if packing == "several":
        return build_mail_with_files([(name, data), ("说明.txt", "见附件".encode()), ("照片.jpg", b"\xff\xd8\xff\xe0")])
    if packing == "single":
        return build_single_part_mail(data, draw(st.one_of(st.none(), file_names)))
    if packing == "forwarded":
        inner = build_mail(MailStyle.WEBMAIL_163, attachment=data, filename=name)
        return build_mail_with_files(forwarded=[inner])
    style = draw(st.sampled_from(ATTACHMENT_STYLES))
    return build_mail(style, sender=SENDER, attachment=data, filename=name)


@PROPERTY
@given(table_mails())
def test_mangled_table_clear_outcome(raw):
    assert_clear(decide_raw(raw))


@settings(PROPERTY, max_examples=40)
@given(tables(unit=st.just("水定镇")))
def test_built_table_always_found(data):
    """An unmangled form from the sender's own unit is always read: accepted or rejected."""
    word = "word/document.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    name = "水定镇第3周统计表.docx" if word else "水定镇第3周统计表.xlsx"
    decision = decide_raw(build_mail(MailStyle.WEBMAIL_163, sender=SENDER, attachment=data, filename=name))
    assert decision.outcome in (MessageOutcome.ACCEPTED, MessageOutcome.REJECTED)


# --- MIME trees --------------------------------------------------------------------------------

CHARSETS = ["utf-8", "gbk", "gb2312", "gb18030", "big5", "iso-8859-1", "x-unknown", "utf-16", "us-ascii", ""]
TRANSFER_ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "base65", ""]
_VALID_TABLE = build_xlsx([SAMPLE_ROWS["valid"]])
_VALID_DOCX = build_docx([SAMPLE_ROWS["valid"]])
PAYLOADS = st.one_of(
    st.sampled_from([_VALID_TABLE, _VALID_DOCX, _VALID_TABLE[:300], b"", b"%PDF-1.4\n", b"\xff\xd8\xff\xe0JFIF"]),
    st.binary(max_size=64),
)


def _encode_text(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset or "ascii")
    except (LookupError, UnicodeError):
        # Clients often mislabel text, such as GBK bytes under gb2312, so text that the label
        # cannot encode is written as GB18030 under that label.
        return text.encode("gb18030")


def _body(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(data)
    if encoding == "quoted-printable":
        return quopri.encodestring(data)
    return data


@st.composite
def filename_headers(draw) -> bytes:
    """A file name written the way some client writes it, or wrongly."""
    name = draw(st.sampled_from(["水定镇第3周.xlsx", "周报.docx", "a.xls", "表", ""]))
    charset = draw(st.sampled_from(CHARSETS))
    raw = _encode_text(name, charset)
    form = draw(st.sampled_from(["2047", "2231", "raw", "broken-2047", "none"]))
    if form == "2047":
        value = b'"=?' + charset.encode() + b"?B?" + base64.b64encode(raw) + b'?="'
    elif form == "2231":
        percent = "".join(f"%{byte:02X}" for byte in raw).encode()
        return b"Content-Disposition: attachment; filename*=" + charset.encode() + b"''" + percent
    elif form == "raw":
        value = b'"' + raw + b'"'
    elif form == "broken-2047":
        value = b'"=?' + charset.encode() + b"?B?" + base64.b64encode(raw)[:-2] + b'"'
    else:
        return b"Content-Disposition: attachment"
    return b"Content-Disposition: attachment; filename=" + value


@st.composite
def mime_parts(draw, depth: int = 0) -> bytes:
    """One MIME entity: a text part, a file, a multipart of entities or a message/rfc822."""
    kinds = ["text", "file"] + (["multipart", "message"] if depth < 7 else [])
    kind = draw(st.sampled_from(kinds))
    encoding = draw(st.sampled_from(TRANSFER_ENCODINGS))
    head = b"Content-Transfer-Encoding: " + encoding.encode() + b"\r\n" if encoding else b""

    if kind == "text":
        charset = draw(st.sampled_from(CHARSETS))
        subtype = draw(st.sampled_from(["plain", "html"]))
        text = draw(st.sampled_from(["附件是本周统计表。", "<table><tr><td>2</td><td>3</td></tr></table>", ""]))
        return (b"Content-Type: text/" + subtype.encode() + b"; charset=" + charset.encode() + b"\r\n" + head
                + b"\r\n" + _body(_encode_text(text, charset), encoding))

    if kind == "file":
        content_type = draw(st.sampled_from([b"application/octet-stream", b"application/vnd.ms-excel",
                                             b"application/zip", b"image/jpeg", b"message/rfc822"]))
        return (b"Content-Type: " + content_type + b"\r\n" + draw(filename_headers()) + b"\r\n" + head + b"\r\n"
                + _body(draw(PAYLOADS), encoding))

    if kind == "message":
        return b"Content-Type: message/rfc822\r\n\r\n" + draw(mails(depth + 1))

    boundary = draw(st.sampled_from([b"b1", b"----=_Part_1", b"=_x", b'"quoted b"'])) + str(depth).encode()
    plain = boundary.strip(b'"')
    subtype = draw(st.sampled_from([b"mixed", b"alternative", b"related", b"report"]))
    children = draw(st.lists(mime_parts(depth + 1), min_size=0, max_size=3))
    body = b"".join(b"--" + plain + b"\r\n" + child + b"\r\n" for child in children)
    if draw(st.booleans()):
        body += b"--" + plain + b"--\r\n"
    return b"Content-Type: multipart/" + subtype + b"; boundary=" + boundary + b"\r\n\r\n" + body


@st.composite
def mails(draw, depth: int = 0) -> bytes:
    """A whole mail: headers with drawn charsets around a drawn MIME tree."""
    sender = draw(st.sampled_from([SENDER, SENDER, SENDER, "stranger@example.test", "", "MAILER-DAEMON@example.test"]))
    subject_charset = draw(st.sampled_from(CHARSETS))
    subject = base64.b64encode(_encode_text("水定镇第3周科技之冬周统计表", subject_charset))
    head = (b"From: =?" + subject_charset.encode() + b"?B?5rC05a6a?= <" + sender.encode() + b">\r\n"
            + b"To: " + COUNTY_ADDRESS.encode() + b"\r\n"
            + b"Subject: =?" + subject_charset.encode() + b"?B?" + subject + b"?=\r\n"
            + draw(st.sampled_from([b"Date: Fri, 22 Dec 2023 16:42:00 +0800\r\n", b"Date: yesterday\r\n", b""]))
            + b"Message-ID: <p" + str(depth).encode() + b"@example.test>\r\nMIME-Version: 1.0\r\n")
    return head + draw(mime_parts(depth))


@st.composite
def mangled_mails(draw) -> bytes:
    """A drawn mail, then cut, with line ends changed or with bytes inserted."""
    raw = draw(mails())
    mutation = draw(st.sampled_from(["keep", "truncate", "lf", "insert", "drop_line"]))
    if mutation == "truncate":
        return raw[: draw(st.integers(0, len(raw)))]
    if mutation == "lf":
        return raw.replace(b"\r\n", b"\n")
    if mutation == "insert":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=16)) + raw[at:]
    if mutation == "drop_line":
        lines = raw.split(b"\r\n")
        del lines[draw(st.integers(0, len(lines) - 1))]
        return b"\r\n".join(lines)
    return raw


@settings(PROPERTY, max_examples=500)
@given(mangled_mails())
def test_mangled_mime_clear_outcome(raw):
    assert_clear(decide_raw(raw))


HEADER_PREFIXES = [
    b"",
    b"From: shuiding_kx@163.com\r\n",
    b"From: shuiding_kx@163.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n",
    b"From: shuiding_kx@163.com\r\nContent-Type: application/octet-stream; name=a.xlsx\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n",
]


@settings(PROPERTY, max_examples=300)
@given(st.sampled_from(HEADER_PREFIXES), st.binary(max_size=2048))
def test_random_bytes_clear_outcome(prefix, data):
    assert_clear(decide_raw(prefix + data))


def _garbled_member(data: bytes, member: str) -> bytes:
    """Return the archive with eight bytes inverted inside the deflate stream of ``member``."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    # The local file header is 30 bytes, then the name and the extra field (zipfile.sizeFileHeader).
    start = info.header_offset + 30 + len(info.filename.encode("utf-8")) + len(info.extra) + 100
    garbled = bytearray(data)
    for offset in range(start, start + 8):
        garbled[offset] ^= 0xFF
    return bytes(garbled)


def test_corrupt_docx_stream_clear_outcome():
    data = _garbled_member(build_docx([SAMPLE_ROWS["valid"]]), "word/document.xml")
    assert_clear(decide_raw(build_mail(MailStyle.WEBMAIL_163, attachment=data, filename="水定镇第3周.docx")))


@pytest.mark.parametrize("member", [
    "word/document.xml",
    "_rels/.rels",
    "word/_rels/document.xml.rels",
    "[Content_Types].xml",
])
def test_foreign_docx_part_clear_outcome(member):
    source = zipfile.ZipFile(io.BytesIO(build_docx([SAMPLE_ROWS["valid"]])))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as target:
        for name in source.namelist():
            foreign = name == member
            target.writestr(name, b"<?xml version='1.0'?><worksheet/>" if foreign else source.read(name))
    raw = build_mail(MailStyle.WEBMAIL_163, attachment=output.getvalue(), filename="水定镇第3周.docx")
    assert_clear(decide_raw(raw))


def test_corrupt_xlsx_stream_clear_outcome():
    data = _garbled_member(build_xlsx([SAMPLE_ROWS["valid"]]), "xl/worksheets/sheet1.xml")
    assert_clear(decide_raw(build_mail(MailStyle.WEBMAIL_163, attachment=data, filename="水定镇第3周.xlsx")))
