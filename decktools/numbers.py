"""Measured numbers on slides: `<Measured fig="id" value="a.b" digits="2"/>` filled from figure JSON.

Every figure writes the numbers it shows to talk/public/figures/<id>.json; a slide quotes them
through this tag so no measured value is ever typed by hand. Attributes:
  fig     the figure id ("zoo/accuracy")
  value   a dotted path into its JSON ("models.shapes-cnn-a.test_accuracy"; list items by index)
  digits  decimals to show (default 2); percent="true" multiplies by 100 and appends %;
  unit    text appended after the number

    text = format_measured(attributes, figures_dir)     # "98.1%"; MeasuredError if it cannot
"""
from __future__ import annotations

import json
from pathlib import Path

from figures_src.runner import did_you_mean

SUGGESTED_LIST_ITEMS = 10   # list items whose paths are offered as "did you mean"


class MeasuredError(ValueError):
    """A Measured tag whose figure or value does not exist; the message says what to do."""


def key_paths(numbers, prefix: str = "") -> list[str]:
    """Every dotted path into a figure's JSON ('a', 'a.b', 'a.0'; the first items of each list)."""
    if isinstance(numbers, dict):
        items = list(numbers.items())
    elif isinstance(numbers, list):
        items = list(enumerate(numbers[:SUGGESTED_LIST_ITEMS]))
    else:
        return []
    paths = []
    for key, value in items:
        paths.append(f"{prefix}{key}")
        paths += key_paths(value, f"{prefix}{key}.")
    return paths


def lookup(numbers, dotted: str):
    """Follow 'a.b.0.c' through dicts and lists."""
    current = numbers
    for part in dotted.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            hint = did_you_mean(dotted, key_paths(numbers))
            available = ", ".join(sorted(map(str, current))[:12]) if isinstance(current, dict) else type(current).__name__
            raise MeasuredError(f"value {dotted!r}: no {part!r} here{hint}; available here: {available}")
    return current


def read_numbers(figure_id: str, figures_dir: Path):
    path = figures_dir / f"{figure_id}.json"
    if not path.exists():
        raise MeasuredError(f"figure {figure_id!r} has no numbers file {path}: run `make figures` "
                            "(or check the id against figures_src/)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:       # JSONDecodeError and UnicodeDecodeError both are
        raise MeasuredError(f"figure {figure_id!r}: {path} is not JSON ({error}); run "
                            "`make figures FORCE=1` to write it again") from None


def format_measured(attributes: dict[str, str], figures_dir: Path) -> str:
    """The number as it should appear on the slide."""
    if "fig" not in attributes or "value" not in attributes:
        raise MeasuredError('<Measured> needs fig="family/name" and value="key.path"')
    value = lookup(read_numbers(attributes["fig"], figures_dir), attributes["value"])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value}{attributes.get('unit', '')}"
    written = attributes.get("digits", "2")
    if not (written.isdecimal() and int(written) <= 20):
        raise MeasuredError(f'digits="{written}": write a whole number of decimals from 0 to 20')
    digits = int(written)
    if attributes.get("percent", "").lower() in ("true", "1", "yes"):
        return f"{100 * value:.{digits}f}%"
    text = f"{value:,.{digits}f}" if abs(value) >= 10_000 else f"{value:.{digits}f}"
    return text + attributes.get("unit", "")
