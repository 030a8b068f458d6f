"""Sample township mails that zhoubao builds itself, for ``zhoubao demo`` and the tests.

Every address is fictitious and only ever used on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt

from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx

BEIJING = dt.timezone(dt.timedelta(hours=8), "北京时间")

# (unit, aliases, address) of the units that appear in the demo mails.
DEMO_UNITS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("水定镇", (), "shuiding_kx@163.com"),
    ("清水河镇", (), "qingshuihe_kx@163.com"),
    ("惠远镇", (), "huiyuan_kx@163.com"),
    ("三道河乡", (), "sandaohe_kx@163.com"),
    ("兰干乡", (), "langan_kx@qq.com"),
    ("三宫回族乡", (), "sangong_kx@163.com"),
)


def _at(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2023, 12, day, hour, minute, tzinfo=BEIJING)


def demo_mails(county_address: str = "hckexie-demo@example.test") -> list[bytes]:
    """Return eight mails of week 3 and 4 as township clients send them, oldest first.

    Accepted: 水定镇 (and its resend of the same file), 清水河镇, 惠远镇. Rejected: 三道河乡 (R1,
    after the deadline) and 兰干乡 (R2, R5). No reply: an auto-reply. Unreadable: a mail whose
    clerk forgot the attachment.
    """
    shuiding = build_xlsx([SAMPLE_ROWS["valid"]])
    return [
        build_mail(MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", sender_name="水定镇科协",
                   subject="水定镇第3周科技之冬周统计表", attachment=shuiding,
                   filename="水定镇第3周科技之冬周统计表.xlsx", date=_at(22, 16, 42), to=county_address),
        build_mail(MailStyle.THUNDERBIRD, sender="qingshuihe_kx@163.com", sender_name="清水河镇",
                   subject="清水河镇“科技之冬”活动开展周统计表（第3周）",
                   attachment=build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇", reporter="王芳",
                                         phone="139****0002"),
                   filename="清水河镇“科技之冬”活动开展周统计表（第3周）.docx", date=_at(22, 17, 5),
                   to=county_address),
        build_mail(MailStyle.MAILMASTER, sender="shuiding_kx@163.com", sender_name="水定镇科协",
                   subject="水定镇第3周科技之冬周统计表（重发）", attachment=shuiding,
                   filename="水定镇第3周科技之冬周统计表.xlsx", date=_at(22, 17, 20), to=county_address),
        build_mail(MailStyle.RAW_UTF8, sender="huiyuan_kx@163.com", sender_name="惠远镇",
                   subject="惠远镇第三周科技之冬统计表",
                   attachment=build_xlsx([SAMPLE_ROWS["blanks"]], unit="惠远镇", reporter="阿依古丽",
                                         phone="135****0004", as_text=True),
                   filename="惠远镇第三周统计表.xlsx", date=_at(22, 17, 51), to=county_address),
        build_mail(MailStyle.AUTOREPLY, sender="huiyuan_kx@163.com", sender_name="惠远镇",
                   subject="自动回复: 惠远镇第三周科技之冬统计表", date=_at(22, 17, 52),
                   to=county_address),
        build_mail(MailStyle.NO_ATTACHMENT, sender="sangong_kx@163.com", sender_name="三宫回族乡",
                   subject="三宫回族乡第3周科技之冬周统计表", date=_at(22, 17, 58), to=county_address),
        build_mail(MailStyle.ANDROID, sender="sandaohe_kx@163.com", sender_name="三道河乡",
                   subject="三道河乡第3周科技之冬周统计表",
                   attachment=build_xlsx([SAMPLE_ROWS["r1_broken"]], unit="三道河乡",
                                         reporter="刘建国", phone="158****0006"),
                   filename="三道河乡周统计表.xlsx", date=_at(22, 18, 47), to=county_address),
        build_mail(MailStyle.FOXMAIL, sender="langan_kx@qq.com", sender_name="兰干乡",
                   subject="兰干乡第4周科技之冬周统计表",
                   attachment=build_docx([SAMPLE_ROWS["r2_r5_broken"]], unit="兰干乡", reporter="努尔兰",
                                         phone="159****0007", date_text="2023年12月29日"),
                   filename="附件二：兰干乡2023-2024科技之冬周统计表(12.29).docx", date=_at(29, 17, 12),
                   to=county_address),
    ]
