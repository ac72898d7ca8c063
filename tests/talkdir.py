"""Test support: a deck folder of a test's own that uses the project's installed Slidev.

    link_node_modules(tmp_path / "talk")     # then write decks there and build or serve them

Not part of the product.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def link_node_modules(talk_dir: Path) -> None:
    """talk_dir/node_modules: each installed package linked to the project's talk/node_modules, but
    a .slidev folder of its own. Slidev writes its generated modules there (.slidev/virtual/) in
    place, not by rename, so two Slidev processes sharing one folder (a test's deck and the
    project's deck, on two pytest-xdist workers) can read each other's half-written file."""
    installed = (REPO / "talk" / "node_modules").resolve()
    (talk_dir / "node_modules").mkdir()
    for entry in installed.iterdir():
        if entry.name != ".slidev":
            (talk_dir / "node_modules" / entry.name).symlink_to(entry)
