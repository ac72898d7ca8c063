"""Would installing the `reference` extra change the main venv's pinned packages?

    pip install --dry-run --quiet --report - transformer_lens==3.5.1 | python -m bench.reference_pins

Reads pip's installation report on stdin and exits 0 when it installs none of torch, torchvision
or numpy (the Makefile then installs the extra into the main venv), 1 naming what it would change
(the Makefile then gives it a venv of its own, .venv-reference).
"""
from __future__ import annotations

import json
import sys

PINNED = ("torch", "torchvision", "numpy")


def changed_pins(report: dict) -> list[str]:
    """"numpy 1.26.4"-style names of the pinned packages the report would install."""
    return [f"{item['metadata']['name']} {item['metadata']['version']}" for item in report.get("install", [])
            if item["metadata"]["name"].lower() in PINNED]


def main() -> int:
    changes = changed_pins(json.load(sys.stdin))
    if changes:
        print(f"the reference extra would change {', '.join(changes)}: it gets a venv of its own",
              file=sys.stderr)
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
