"""Unit directory: finding a township by sender address and by the name written on the form."""

import pytest

from ingest.units import UnitDirectory, UnitSettings

UNITS = (
    UnitSettings("水定镇", (), ("shuiding_kx@163.com",)),
    UnitSettings("清水河镇", (), ("qingshuihe_kx@163.com",)),
    UnitSettings("芦草沟镇", ("芦草沟镇人民政府",), ("lucaogou_kx@126.com",)),
    UnitSettings("惠远镇", (), ("huiyuan_kx@163.com", "huiyuan_office@example.test")),
    UnitSettings("萨尔布拉克镇", (), ("saerbulake_kx@163.com",)),
    UnitSettings("三道河乡", (), ("sandaohe_kx@163.com",)),
    UnitSettings("兰干乡", (), ("langan_kx@qq.com",)),
    UnitSettings("大西沟乡", (), ("daxigou_kx@qq.com",)),
    UnitSettings("三宫回族乡", (), ("sangong_kx@163.com",)),
    UnitSettings("霍城县良种繁育中心", ("良繁中心",), ("liangfan_kx@example.test",)),
)


@pytest.fixture
def directory() -> UnitDirectory:
    return UnitDirectory(UNITS)


def test_by_email_exact(directory):
    assert directory.by_email("shuiding_kx@163.com").name == "水定镇"


def test_by_email_case_insensitive(directory):
    assert directory.by_email("LuCaoGou_KX@126.COM").name == "芦草沟镇"


def test_by_email_second_address(directory):
    assert directory.by_email("huiyuan_office@example.test").name == "惠远镇"


def test_by_email_unknown(directory):
    assert directory.by_email("stranger@example.test") is None


def test_by_email_none(directory):
    assert directory.by_email(None) is None


def test_directory_length(directory):
    assert len(directory) == 10


def test_directory_iterates_in_order(directory):
    assert [unit.name for unit in directory][:2] == ["水定镇", "清水河镇"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("水定镇", "水定镇"),
        ("芦草沟镇人民政府", "芦草沟镇"),
        ("水定镇人民政府", "水定镇"),  # not configured as an alias
        ("水定镇政府", "水定镇"),
        ("水定镇党委", "水定镇"),
        ("水定镇办公室", "水定镇"),
        ("水定镇人民政府办公室", "水定镇"),
        ("水定镇党政办", "水定镇"),
        ("水定镇科协", "水定镇"),
        ("水定镇镇政府", "水定镇"),
        ("水 定 镇", "水定镇"),
        (" 水定镇 ", "水定镇"),
        ("水定镇。", "水定镇"),
        ("水定镇：", "水定镇"),
        ("水定镇（盖章）", "水定镇"),
        ("霍城县水定镇", "水定镇"),
        ("伊犁州霍城县水定镇人民政府", "水定镇"),
        ("三宫乡", "三宫回族乡"),
        ("三宫回族乡党委", "三宫回族乡"),
        ("萨尔布拉克", "萨尔布拉克镇"),
        ("良繁中心", "霍城县良种繁育中心"),
        ("霍城县良种繁育中心", "霍城县良种繁育中心"),
        ("良种繁育中心", "霍城县良种繁育中心"),
    ],
)
def test_match_name(directory, text, name):
    assert directory.match_name(text).name == name


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "政府",
        "人民政府",
        "霍城县",
        "霍城县科协",
        "清水",
        "水定镇、清水河镇",
        "伊宁市",
    ],
)
def test_match_name_none(directory, text):
    assert directory.match_name(text) is None


def test_shared_place_name_ambiguous():
    directory = UnitDirectory([UnitSettings("新华镇"), UnitSettings("新华乡")])
    assert directory.match_name("新华") is None


def test_shared_place_name_exact_still_matches():
    directory = UnitDirectory([UnitSettings("新华镇"), UnitSettings("新华乡")])
    assert directory.match_name("新华乡人民政府").name == "新华乡"


def test_unit_names_include_aliases():
    assert UNITS[2].names == ("芦草沟镇", "芦草沟镇人民政府")
