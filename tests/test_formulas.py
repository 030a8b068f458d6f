"""compute_formulas: formulas saved without their results, computed like Excel would."""

import datetime as dt

import pytest

from ingest.errors import UnreadableFile
from ingest.readers.formulas import FORMULA_REASON, compute_formulas

# A1..E2 of a small sheet: numbers, a number typed as text, a blank, text, TRUE and an error.
ROWS = [
    [1, 2, "3", None, "x"],
    [4, 5, 6, True, "#DIV/0!"],
]


def _one(formula: str, rows=ROWS, sheet: str = "Sheet1") -> object:
    return compute_formulas({(9, 9): formula}, rows, sheet)[(9, 9)]


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("=1+2*3", 7),
        ("=(1+2)*3", 9),
        ("=A1+B1*2-(A2/4)", 4),
        ("=-A1--2", 1),
        ("=+A1", 1),
        ("=$B$2*2", 10),
        ("=7/2", 3.5),
        ("A1+1", 2),
        ("=a1+b1", 3),
        ("=D1+1", 1),
    ],
)
def test_formulas_arithmetic(formula, expected):
    assert _one(formula) == expected


def test_formulas_text_number_operand():
    assert _one("=C1+1") == 4


def test_formulas_true_operand():
    assert _one("=D2+1") == 2


def test_formulas_whole_result_is_int():
    assert type(_one("=4/2")) is int


def test_formulas_fifteen_digits():
    assert _one("=0.1*30") == 3


def test_formulas_date_operand():
    assert _one("=A1+1", rows=[[dt.datetime(2023, 12, 22)]]) == 45283


def test_formulas_sum_range():
    # '3' as text and TRUE in a referenced range are skipped, as Excel's SUM does.
    assert _one("=SUM(A1:D2)") == 18


def test_formulas_sum_arguments():
    assert _one("=SUM(A1,B1:B2,10,C1+1)") == 22


def test_formulas_sum_lower_case():
    assert _one("=sum(a1:a2)") == 5


def test_formulas_sum_reversed_range():
    assert _one("=SUM(B2:A1)") == 12


def test_formulas_sum_whole_column():
    assert _one("=SUM(A:A)") == 5


def test_formulas_sum_whole_row():
    assert _one("=SUM(1:1)") == 3


def test_formulas_sum_inside_arithmetic():
    assert _one("=SUM(A1:A2)*2+1") == 11


def test_formulas_own_sheet_prefix():
    assert _one("=Sheet1!A1+'sheet1'!B1") == 3


def test_formulas_quoted_sheet_name():
    assert _one("='周 报'!A2", sheet="周 报") == 4


def test_formulas_chain():
    results = compute_formulas({(1, 1): "=A2+1", (2, 1): "=A3*2", (3, 1): "=5"}, [], "S")
    assert results == {(1, 1): 11, (2, 1): 10, (3, 1): 5}


def test_formulas_sum_over_formulas():
    formulas = {(1, 3): "=A1+B1", (2, 3): "=A2+B2", (3, 3): "=SUM(C1:C2)"}
    assert compute_formulas(formulas, ROWS, "S")[(3, 3)] == 12


def test_formulas_total_row_below_rows():
    # The formula's row lies past the last row read, as a total row under an empty template.
    assert compute_formulas({(6, 1): "=SUM(A1:A5)"}, ROWS, "S")[(6, 1)] == 5


def test_formulas_division_by_zero():
    assert _one("=A1/0") == "#DIV/0!"


def test_formulas_text_operand_error():
    assert _one("=E1+1") == "#VALUE!"


def test_formulas_error_operand_passed_on():
    assert _one("=E2+1") == "#DIV/0!"


def test_formulas_error_in_sum_range():
    assert _one("=SUM(A2:E2)") == "#DIV/0!"


def test_formulas_overflow():
    assert _one("=1E308*10") == "#NUM!"


@pytest.mark.parametrize(
    "formula",
    [
        "=IF(A1=1,2,3)",
        "=ROUND(A1,0)",
        "=A1%",
        "=A1^2",
        '=A1&"x"',
        "=Sheet2!A1",
        "=total+1",
        "=SUM(A1 B1)",
        "=A1:B2",
        "=(1+2",
        "=SUM(A1,)",
        "={1,2}",
        "=XFE1",
    ],
)
def test_formulas_unsupported(formula):
    with pytest.raises(UnreadableFile) as caught:
        _one(formula)
    assert caught.value.reason == FORMULA_REASON


def test_formulas_unsupported_names_cell():
    with pytest.raises(UnreadableFile) as caught:
        compute_formulas({(8, 5): "=IF(A1,1,2)"}, ROWS, "Sheet1")
    assert "row 8 column 5" in str(caught.value)


def test_formulas_circular():
    with pytest.raises(UnreadableFile):
        compute_formulas({(1, 1): "=A2", (2, 1): "=A1"}, [], "S")


def test_formulas_range_includes_itself():
    with pytest.raises(UnreadableFile):
        compute_formulas({(3, 1): "=SUM(A1:A3)"}, ROWS, "S")


def test_formulas_depth_bounded():
    chain = {(row, 1): f"=A{row + 1}+1" for row in range(1, 200)}
    chain[(200, 1)] = "=1"
    with pytest.raises(UnreadableFile):
        compute_formulas(chain, [], "S")


def test_formulas_long_running_total():
    rows = [[None, 1] for _ in range(300)]
    formulas = {(1, 1): "=B1", **{(row, 1): f"=A{row - 1}+B{row}" for row in range(2, 301)}}
    assert compute_formulas(formulas, rows, "S")[(300, 1)] == 300
