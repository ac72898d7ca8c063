"""A problem found in a deck or bibliography, printed as file:line:column: level: message."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    column: int
    message: str
    level: str = "error"        # "error" fails the check; "warning" is printed only

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.level}: {self.message}"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == "error"]


def counted(number: int, noun: str) -> str:
    """'1 error', '2 errors', '0 warnings': a count for a summary line."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
