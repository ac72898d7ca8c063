"""Near names for messages: a misspelt field, figure id, dataset or value key gets "did you mean".

    did_you_mean("mnist5k", ["mnist", "mnist-5k", "shapes"])    # " (did you mean mnist-5k, mnist?)"

Read without torch: the zoo's config reader and the figure runner both use it.
"""
from __future__ import annotations

import difflib


def did_you_mean(name: str, known, cutoff: float = 0.5) -> str:
    """' (did you mean a, b?)' with the closest known names (difflib's ratio at least cutoff), or
    ''. Case is ignored in comparing ('NTSB2019' finds 'ntsb2019'); name itself is never offered."""
    name = str(name)
    folded: dict[str, list[str]] = {}
    for candidate in sorted(set(map(str, known)) - {name}):
        folded.setdefault(candidate.casefold(), []).append(candidate)
    close = difflib.get_close_matches(name.casefold(), folded, n=3, cutoff=cutoff)
    names = [candidate for match in close for candidate in folded[match]]
    return f" (did you mean {', '.join(names)}?)" if names else ""
