"""The configured reporting units (townships) and how a mail or a form names them.

A unit is found by the sender's address, or by the 填报乡镇（单位） text a clerk typed on the form.
Clerks write their unit in many ways: 芦草沟镇人民政府, 水定镇 党委, 霍城县三宫乡, 惠远镇（盖章）.
:meth:`UnitDirectory.match_name` strips those additions step by step and accepts a match only
when it is unique.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ingest.calendar import Campaign

# Office names a clerk appends to the township's name. Longer ones come first so that
# 人民政府 is removed whole before 政府 is tried.
_OFFICE_SUFFIXES = (
    "科学技术协会", "党政办公室", "党委办公室", "人民政府", "党政办", "政府办",
    "办公室", "政府", "党委", "科协",
)

# The county prefix in 霍城县水定镇 or 伊犁州霍城县水定镇.
_COUNTY_PREFIX = re.compile(r"^(?:.{1,8}?[州市])?.{1,6}?县")

# The township kind at the end of a name: 镇, 乡 and the ethnic township forms (三宫回族乡).
_KIND_SUFFIX = re.compile(r"(?:回族|锡伯族|哈萨克族|蒙古族|柯尔克孜族|维吾尔族|民族)?[镇乡]$")

# Text in brackets after a name, such as （盖章） or (科协).
_BRACKETED = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")


@dataclass(frozen=True)
class UnitSettings:
    """One reporting unit from the config: its name, the other names it goes by, its addresses.

    ``emails`` are lower-case addr-specs. ``from_week`` and ``until_week`` are the first and last
    week the unit reports, for a unit that joins late or leaves; None means the campaign's end.
    ``villages`` is the number of villages in the unit, the most that 3栏 村（个） can cover.
    """

    name: str
    aliases: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    from_week: int = 1
    until_week: int | None = None
    villages: int | None = None

    def reports_in(self, week: int) -> bool:
        """Tell whether ``week`` lies between the unit's first and last week of reporting."""
        if week < self.from_week:
            return False
        return self.until_week is None or week <= self.until_week

    @property
    def names(self) -> tuple[str, ...]:
        """The unit's name followed by its aliases."""
        return (self.name, *self.aliases)


class UnitDirectory:
    """Look-ups over the configured units by sender address and by written name."""

    def __init__(self, units: Iterable[UnitSettings]):
        self._units = tuple(units)
        self._by_email = {email.lower(): unit for unit in self._units for email in unit.emails}
        self._exact = _index(self._units, _clean)
        self._stripped = _index(self._units, _strip_offices)
        self._cores = _index(self._units, _core)

    def __iter__(self) -> Iterator[UnitSettings]:
        return iter(self._units)

    def __len__(self) -> int:
        return len(self._units)

    def due_in(self, campaign: Campaign, week: int) -> list[UnitSettings]:
        """Return the units that must report ``week``: none in a skipped week, else those in range."""
        if not campaign.is_reporting_week(week):
            return []
        return [unit for unit in self._units if unit.reports_in(week)]

    def by_email(self, address: str | None) -> UnitSettings | None:
        """Return the unit that sends from ``address`` (compared case-insensitively), else None."""
        if not address:
            return None
        return self._by_email.get(address.strip().lower())

    def match_name(self, text: str | None) -> UnitSettings | None:
        """Return the unit that ``text`` names, or None when it names none or several.

        The first attempt compares names and aliases ignoring spaces and punctuation. The second
        also removes bracketed remarks, a county prefix and office suffixes (人民政府, 党委, 办公室).
        The last compares bare place names without 镇 or 乡, so that 三宫乡 finds 三宫回族乡.
        """
        if not text:
            return None

        cleaned = _clean(text)
        stripped = _strip_offices(text)
        attempts = (
            (self._exact, cleaned),
            (self._stripped, stripped),
            (self._cores, _core(text)),
        )
        for index, key in attempts:
            if key and key in index:
                return index[key]
        return None


def _index(units: tuple[UnitSettings, ...], normalize: Callable[[str], str]) -> dict[str, UnitSettings]:
    """Map each normalized name to its unit; keys two units share are left out as ambiguous."""
    index: dict[str, UnitSettings] = {}
    ambiguous: set[str] = set()
    for unit in units:
        for name in unit.names:
            key = normalize(name)
            if not key:
                continue
            if key in index and index[key] is not unit:
                ambiguous.add(key)
            index[key] = unit
    return {key: unit for key, unit in index.items() if key not in ambiguous}


def _clean(text: str) -> str:
    """Return ``text`` in NFKC form without whitespace, punctuation or symbols."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(char for char in text if unicodedata.category(char)[0] not in "PSZC")


def _strip_offices(text: str) -> str:
    """Return the cleaned name without bracketed remarks, county prefix and office suffixes."""
    text = _BRACKETED.sub("", unicodedata.normalize("NFKC", text))
    name = _clean(text)

    # Several offices may follow each other (人民政府办公室), so remove one per pass and rescan.
    while suffix := _office_suffix(name):
        name = name[: -len(suffix)]

    # 水定镇镇政府 leaves 水定镇镇 once 政府 is gone.
    if len(name) > 2 and name[-1] in "镇乡" and name[-2] == name[-1]:
        name = name[:-1]

    without_county = _COUNTY_PREFIX.sub("", name)
    return without_county or name


def _office_suffix(name: str) -> str | None:
    """Return the longest office suffix that ``name`` ends with and does not consist of."""
    for suffix in _OFFICE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def _core(text: str) -> str:
    """Return the bare place name: the stripped name without its 镇, 乡 or 回族乡 ending."""
    name = _strip_offices(text)
    core = _KIND_SUFFIX.sub("", name)
    return core if len(core) >= 2 else ""
