"""Near names for messages: a misspelt field, figure id, dataset or value key gets "did you mean".

    did_you_mean("mnist5k", ["mnist", "mnist-5k", "shapes"])    # " (did you mean mnist-5k, mnist?)"

Read without torch: the zoo's config reader and the figure runner both use it.
"""
from __future__ import annotations

import difflib


def did_you_mean(name: str, known) -> str:
    """' (did you mean a, b?)' with the closest known names, or ''."""
    close = difflib.get_close_matches(str(name), sorted(map(str, known)), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""
