"""The vocabulary of 附件二, the weekly statistics table, as the county prints it.

Columns are named by the numbers of the form's numbering row (2..20); 备注 has no number.
"""

COLUMNS: tuple[int, ...] = tuple(range(2, 21))

# Activity categories in the order of the form, each taking a 场次 and a 人次 column.
CATEGORIES: tuple[str, ...] = (
    "开展政策宣讲",
    "农牧民职业技能培训",
    "防灾减灾科普宣传",
    "食品安全科普宣传",
    "卫生健康科普宣传",
    "其他活动",
)


def _column_names() -> dict[int, str]:
    names = {
        2: "乡镇（个）",
        3: "村（个）",
        4: "累计场次",
        5: "累计人次",
        6: "本周合计场次",
        7: "本周合计人次",
        8: "其中：科技人员参与人数",
    }
    for index, category in enumerate(CATEGORIES):
        names[9 + 2 * index] = f"{category}场次"
        names[10 + 2 * index] = f"{category}人次"
    return names


COLUMN_NAMES: dict[int, str] = _column_names()

REMARK = "备注"


def column_label(column: int) -> str:
    """Return the column as a clerk finds it on the form, such as ``6栏（本周合计场次）``."""
    return f"{column}栏（{COLUMN_NAMES[column]}）"
