"""Attachment names and header text in the encodings Chinese mail clients produce."""

import email
import email.policy
from email.message import Message

import pytest

from ingest.filenames import attachment_filename, decode_text, header_text
from service.samples.mails import encoded_word, mail_with_part, rfc2231_parameter, split_encoded_words

NAME = "水定镇第3周科技之冬周统计表.xlsx"
GBK_NAME = "萨尔布拉克镇赵喆第4周统计表.docx"  # 喆 is in GBK but not in GB2312
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def attached_part(*headers: str | bytes) -> Message:
    """Parse a mail whose attachment part has ``headers`` and return that part."""
    message = email.message_from_bytes(mail_with_part(headers, b"PK\x03\x04"), policy=email.policy.default)
    return message.get_payload()[1]


def test_encoded_word_in_quotes():
    part = attached_part(f'Content-Type: {XLSX_TYPE}; name="{encoded_word(NAME, "UTF-8")}"')
    assert attachment_filename(part) == NAME


def test_two_words_folded_in_quotes():
    first, second = encoded_word(NAME[:8], "UTF-8"), encoded_word(NAME[8:], "UTF-8")
    part = attached_part(f'Content-Disposition: attachment;\r\n\tfilename="{first}\r\n\t{second}"')
    assert attachment_filename(part) == NAME


def test_character_split_across_quoted_words():
    # Byte 10 is the second of the three UTF-8 bytes of 第.
    first, second = split_encoded_words(NAME, "UTF-8", cut=10)
    part = attached_part(f'Content-Disposition: attachment; filename="{first}\r\n {second}"')
    assert attachment_filename(part) == NAME


def test_character_split_across_unquoted_words():
    first, second = split_encoded_words(NAME, "UTF-8", cut=7)
    part = attached_part(f"Content-Type: application/octet-stream; name={first}\r\n\t{second}")
    assert attachment_filename(part) == NAME


def test_gbk_character_split_across_words():
    first, second = split_encoded_words(GBK_NAME, "GBK", cut=3)
    part = attached_part(f'Content-Disposition: attachment; filename="{first} {second}"')
    assert attachment_filename(part) == GBK_NAME


def test_q_encoded_name():
    part = attached_part(f'Content-Disposition: attachment; filename="{encoded_word(NAME, "utf-8", "Q")}"')
    assert attachment_filename(part) == NAME


def test_lowercase_b_encoding():
    word = encoded_word(NAME, "utf-8").replace("?B?", "?b?")
    part = attached_part(f'Content-Disposition: attachment; filename="{word}"')
    assert attachment_filename(part) == NAME


def test_gb2312_label_holding_gbk_character():
    word = encoded_word(GBK_NAME.encode("gbk"), "gb2312")
    part = attached_part(f'Content-Type: application/octet-stream; name="{word}"', "Content-Disposition: attachment")
    assert attachment_filename(part) == GBK_NAME


def test_gb18030_label():
    part = attached_part(f'Content-Disposition: attachment; filename="{encoded_word(GBK_NAME, "gb18030")}"')
    assert attachment_filename(part) == GBK_NAME


def test_rfc2231_single_value():
    part = attached_part(f"Content-Disposition: attachment;\r\n {rfc2231_parameter('filename', NAME)}")
    assert attachment_filename(part) == NAME


def test_rfc2231_continuations():
    # Sections of 10 characters put the three %XX of one character in two sections.
    parameter = rfc2231_parameter("filename", NAME, "UTF-8", chunk=10)
    part = attached_part(f"Content-Disposition: attachment;\r\n {parameter}")
    assert attachment_filename(part) == NAME


def test_rfc2231_gb2312_label_holding_gbk():
    parameter = rfc2231_parameter("filename", GBK_NAME, "gb2312", chunk=20)
    part = attached_part(f"Content-Disposition: attachment;\r\n {parameter}")
    assert attachment_filename(part) == GBK_NAME


def test_rfc2231_in_content_type_name():
    part = attached_part(f"Content-Type: {XLSX_TYPE};\r\n {rfc2231_parameter('name', NAME)}")
    assert attachment_filename(part) == NAME


def test_rfc2231_preferred_over_plain_fallback():
    parameter = rfc2231_parameter("filename", NAME)
    part = attached_part(f'Content-Disposition: attachment; filename="____3____.xlsx";\r\n {parameter}')
    assert attachment_filename(part) == NAME


def test_raw_utf8_name():
    part = attached_part(b'Content-Disposition: attachment; filename="' + NAME.encode("utf-8") + b'"')
    assert attachment_filename(part) == NAME


def test_raw_gbk_name():
    part = attached_part(b'Content-Type: application/octet-stream; name="' + GBK_NAME.encode("gbk") + b'"')
    assert attachment_filename(part) == GBK_NAME


def test_name_only_in_content_type():
    part = attached_part(f'Content-Type: {XLSX_TYPE}; name="{encoded_word(NAME, "UTF-8")}"', "Content-Disposition: attachment")
    assert attachment_filename(part) == NAME


def test_disposition_preferred_over_type_name():
    part = attached_part(
        f'Content-Type: {XLSX_TYPE}; name="old.xlsx"',
        f'Content-Disposition: attachment; filename="{encoded_word(NAME, "UTF-8")}"',
    )
    assert attachment_filename(part) == NAME


def test_plain_ascii_name():
    part = attached_part('Content-Disposition: attachment; filename="report-w03.xlsx"')
    assert attachment_filename(part) == "report-w03.xlsx"


def test_unquoted_ascii_name():
    part = attached_part("Content-Disposition: attachment; filename=report.xlsx")
    assert attachment_filename(part) == "report.xlsx"


def test_no_name_is_none():
    part = attached_part("Content-Type: application/octet-stream", "Content-Disposition: attachment")
    assert attachment_filename(part) is None


def test_empty_name_is_none():
    part = attached_part('Content-Disposition: attachment; filename=""')
    assert attachment_filename(part) is None


def test_windows_path_removed():
    part = attached_part(b'Content-Disposition: attachment; filename="C:\\\\Users\\\\pc\\\\' + GBK_NAME.encode("gbk") + b'"')
    assert attachment_filename(part) == GBK_NAME


def test_unix_path_removed():
    part = attached_part(f'Content-Disposition: attachment; filename="{encoded_word("/tmp/" + NAME, "UTF-8")}"')
    assert attachment_filename(part) == NAME


def test_control_characters_removed():
    word = encoded_word("水定镇\n统计表\t.xlsx", "UTF-8")
    part = attached_part(f'Content-Disposition: attachment; filename="{word}"')
    assert attachment_filename(part) == "水定镇统计表.xlsx"


def test_decomposed_name_composed():
    decomposed = "Übersicht.xlsx".replace("Ü", "U\u0308")
    part = attached_part(f'Content-Disposition: attachment; filename="{encoded_word(decomposed, "UTF-8")}"')
    assert attachment_filename(part) == "Übersicht.xlsx"


def test_unknown_charset_falls_back_to_utf8():
    word = encoded_word(NAME.encode("utf-8"), "x-unknown-charset")
    part = attached_part(f'Content-Disposition: attachment; filename="{word}"')
    assert attachment_filename(part) == NAME


def test_utf8_label_on_gbk_bytes():
    word = encoded_word(GBK_NAME.encode("gbk"), "UTF-8")
    part = attached_part(f'Content-Disposition: attachment; filename="{word}"')
    assert attachment_filename(part) == GBK_NAME


def test_language_after_charset():
    word = encoded_word(NAME, "UTF-8").replace("=?UTF-8?", "=?UTF-8*zh-CN?")
    part = attached_part(f'Content-Disposition: attachment; filename="{word}"')
    assert attachment_filename(part) == NAME


def test_bad_base64_word_kept_as_text():
    word = encoded_word(NAME, "UTF-8")
    broken = word[:-4] + "!?="
    part = attached_part(f'Content-Disposition: attachment; filename="{broken} {word}"')
    assert attachment_filename(part).endswith(NAME)


def test_subject_gb2312_label_holding_gbk():
    subject = encoded_word("赵喆第4周统计表".encode("gbk"), "gb2312")
    assert header_text(subject) == "赵喆第4周统计表"


def test_subject_q_encoded():
    assert header_text(encoded_word("大西沟乡第3周 统计表", "utf-8", "Q")) == "大西沟乡第3周 统计表"


def test_subject_words_joined_without_space():
    first, second = split_encoded_words("水定镇第3周科技之冬周统计表", "UTF-8", cut=4)
    assert header_text(f"{first}\r\n {second}") == "水定镇第3周科技之冬周统计表"


def test_subject_text_before_word_kept():
    assert header_text("Re: " + encoded_word("水定镇第3周", "UTF-8")) == "Re: 水定镇第3周"


def test_subject_raw_gbk_bytes():
    assert header_text("自动回复：水定镇".encode("gbk")) == "自动回复：水定镇"


def test_subject_raw_utf8_in_parsed_header():
    raw = "Subject: 回复：水定镇第3周\r\n\r\n".encode("utf-8")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    value = next(value for key, value in message.raw_items() if key == "Subject")
    assert header_text(value) == "回复：水定镇第3周"


def test_subject_folded_plain_text():
    assert header_text("Weekly table\r\n for week 3") == "Weekly table for week 3"


def test_subject_empty():
    assert header_text("") == ""


@pytest.mark.parametrize("label", ["base64", "rot13", "hex", "no-such-charset", ""])
def test_decode_text_odd_label(label):
    assert decode_text("水定镇".encode("utf-8"), label) == "水定镇"


def test_decode_text_gbk_labelled_utf8():
    assert decode_text("赵喆".encode("gbk"), "utf-8") == "赵喆"


def test_decode_text_gb2312_label():
    assert decode_text("赵喆".encode("gbk"), "gb2312") == "赵喆"
