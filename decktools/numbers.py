"""Measured numbers on slides: `<Measured fig="id" value="a.b" digits="2"/>` filled from figure JSON.

Every figure writes the numbers it shows to talk/public/figures/<id>.json; a slide quotes them
through this tag so no measured value is ever typed by hand. Attributes:
  fig     the figure id ("zoo/accuracy")
  value   a dotted path into its JSON ("models.shapes-cnn-a.test_accuracy"; list items by index).
          A key may hold dots itself, as layer names do: "probe.features.2.accuracy" reaches
          {"probe": {"features.2": {"accuracy": ...}}}. At each level the longest run of segments
          that is a key is tried first, then shorter ones, and the first reading that reaches a
          value wins (keys "a" and "a.b" both present: "a.b.c" is ["a.b"]["c"] if that exists).
  digits  decimals to show (default 2; a whole number is shown whole unless digits is given);
          percent="true" multiplies by 100 and appends %. A list of numbers shows each, joined
          by commas; a null (NaN, infinity), a dict or a list of lists or dicts is an error
          naming the value, never "None" on a slide;
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


class FigureNotMadeError(MeasuredError):
    """The figure has no numbers file yet: the caller says which make line makes it."""


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


class _Miss(Exception):
    """How far the deepest attempt to follow a path got: segments used, and the value it stood on."""

    def __init__(self, used: int, where):
        super().__init__(used)
        self.used, self.where = used, where


def _steps(current, parts: list[str]) -> list[tuple[object, int]]:
    """Each way to take the next step, as (value, segments used): in a dict every run of leading
    segments that, joined by dots, is a key ('features.2'), longest first; in a list an index."""
    if isinstance(current, dict):
        return [(current[key], n) for n in range(len(parts), 0, -1) if (key := ".".join(parts[:n])) in current]
    part = parts[0]
    if isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
        return [(current[int(part)], 1)]
    return []


def _follow(current, parts: list[str], used: int = 0):
    """The value at parts; where several readings lead somewhere, the one that takes the longer
    key first wins. Raises _Miss for the attempt that got deepest."""
    if used == len(parts):
        return current
    deepest = _Miss(used, current)
    for value, n in _steps(current, parts[used:]):
        try:
            return _follow(value, parts, used + n)
        except _Miss as miss:
            deepest = miss if miss.used > deepest.used else deepest
    raise deepest


def lookup(numbers, dotted: str):
    """Follow 'a.b.0.c' through dicts and lists; a key may itself hold dots ('probe.features.2.accuracy'
    reaches numbers["probe"]["features.2"]["accuracy"]). Where keys overlap ('a' and 'a.b'), the
    longest key that leads to a value wins."""
    parts = dotted.split(".")
    try:
        return _follow(numbers, parts)
    except _Miss as miss:
        raise MeasuredError(_miss_message(numbers, dotted, parts[miss.used:], miss.where)) from None


def _miss_message(numbers, dotted: str, rest: list[str], where) -> str:
    """'value 'a.x': no 'x' here (did you mean a.y?); available here: y, z'."""
    tried = [".".join(rest[:n]) for n in range(1, len(rest) + 1)] if isinstance(where, dict) else rest[:1]
    quoted = [repr(name) for name in tried]
    names = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    hint = did_you_mean(dotted, key_paths(numbers))
    available = ", ".join(sorted(map(str, where))[:12]) if isinstance(where, dict) else type(where).__name__
    return f"value {dotted!r}: no {names} here{hint}; available here: {available}"


def read_numbers(figure_id: str, figures_dir: Path):
    path = figures_dir / f"{figure_id}.json"
    if not path.exists():
        raise FigureNotMadeError(f"figure {figure_id!r} has no numbers file {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:       # JSONDecodeError and UnicodeDecodeError both are
        raise MeasuredError(f"figure {figure_id!r}: {path} is not JSON ({error}); run "
                            "`make figures FORCE=1` to write it again") from None


def format_measured(attributes: dict[str, str], figures_dir: Path) -> str:
    """The number as it should appear on the slide (a list of numbers: each, joined by commas)."""
    if "fig" not in attributes or "value" not in attributes:
        raise MeasuredError('<Measured> needs fig="family/name" and value="key.path"')
    value = lookup(read_numbers(attributes["fig"], figures_dir), attributes["value"])
    check_showable(value, attributes)
    items = value if isinstance(value, list) else [value]
    return ", ".join(format_one(item, attributes) for item in items) + attributes.get("unit", "")


def format_one(value, attributes: dict[str, str]) -> str:
    """One number (or word) as the attributes ask, without the unit."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) and "digits" not in attributes and not is_percent(attributes):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    written = attributes.get("digits", "2")
    if not (written.isdecimal() and int(written) <= 20):
        raise MeasuredError(f'digits="{written}": write a whole number of decimals from 0 to 20')
    digits = int(written)
    if is_percent(attributes):
        return f"{100 * value:.{digits}f}%"
    return f"{value:,.{digits}f}" if abs(value) >= 10_000 else f"{value:.{digits}f}"


def is_percent(attributes: dict[str, str]) -> bool:
    return attributes.get("percent", "").lower() in ("true", "1", "yes")


def check_showable(value, attributes: dict[str, str]) -> None:
    """A value a slide cannot show as numbers or words is the check's error, not "None" or a
    dict's text on the audience's screen."""
    where = f"value {attributes['value']!r} of figure {attributes['fig']!r}"
    items = value if isinstance(value, list) else [value]
    if any(item is None for item in items):
        raise MeasuredError(f"{where} {'holds' if isinstance(value, list) else 'is'} null: the figure returned "
                            "NaN, infinity or None there; make it return a number, or quote another value")
    if isinstance(value, dict):
        raise MeasuredError(f"{where} is a dict, not one number: quote one of its items "
                            f"({attributes['value']}.<one of: {', '.join(map(str, list(value)[:8]))}>)")
    nested = [item for item in items if isinstance(item, (dict, list))]
    if nested:
        indices = ", ".join(map(str, range(min(len(items), 8))))
        raise MeasuredError(f"{where} is a list holding a {type(nested[0]).__name__}: "
                            f"quote one item ({attributes['value']}.<one of: {indices}>)")
