"""Flag values parsed from text: sizes, choices, whole numbers, fractions. Pure, for every layer.

Errors are ValueError with an "expected X, got Y" message naming the flag.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


def parse_bytes(text: Any) -> int:
    """'256MB', '64k', '1GiB' or a plain integer, as bytes (powers of 1024)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"expected a size like 256MB or 1048576, got {text!r}")
    unit = (match.group(2) or "").lower().rstrip("b").rstrip("i")
    return int(match.group(1)) * 1024 ** " kmgt".index(unit or " ")


def choice(flag: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{flag}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def whole_number(flag: str, text: Any, low: int, high: int) -> int:
    """An integer flag value in [low, high]; '2.9', 'true' and '1e3' are errors."""
    if not re.fullmatch(r"\s*[+-]?\d+\s*", str(text)):
        raise ValueError(f"{flag}: expected a whole number, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{flag}: expected {low}..{high}, got {value}")
    return value


def fraction(flag: str, text: Any) -> float:
    """A number in 0..1, e.g. 0.5."""
    try:
        value = float(str(text))
    except ValueError:
        raise ValueError(f"{flag}: expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{flag}: expected a number from 0 to 1, got {text!r}")
    return value
