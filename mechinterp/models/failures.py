"""How the zoo reports a model it cannot build: one short block naming the entry and its zoo.yaml
line and what to do, with no traceback unless VERBOSE=1.

    failure_block("my-tiny", zoo, error)
    # zoo: cannot build 'my-tiny' (models/zoo.yaml:15)
    #   RuntimeError: my layer sizes are wrong (at my_nets/buggy.py:6); fix that code, or run ...

Errors raised by the engine (a ZooError, a missing file) already say what to do and are shown as
they are; any other error is named with the innermost frame of the user's own code. Weights that
do not fit their architecture are listed parameter by parameter, each shape whole:

    weight_mismatches(model, state)
    # "features.0.weight is [8, 1, 5, 5] in the weights, [12, 1, 5, 5] in the model; ...; and 2 more;
    #  missing from the weights: head.weight, head.bias"
"""
from __future__ import annotations

import os
import traceback

from mechinterp.models.config import FieldError, Zoo


def failure_block(name: str, zoo: Zoo, error: BaseException) -> str:
    """A few lines naming the entry, its zoo.yaml line and what to do (VERBOSE=1: the traceback)."""
    if isinstance(error, FieldError) and error.field_name:
        message = f"{zoo.where(name, error.field_name)}: {error}"
    elif says_what_to_do(error):
        message = str(error)
    else:
        message = (f"{type(error).__name__}: {error}{raised_at(error)}; fix that code, or run "
                   "with VERBOSE=1 for the whole traceback")
    block = f"zoo: {zoo.problem_block(name, message)}"
    if os.environ.get("VERBOSE", "") not in ("", "0"):
        block = "".join(traceback.format_exception(error)) + block
    return block


def says_what_to_do(error: BaseException) -> bool:
    """True for errors whose message already says what to do (raised by the zoo or data code)."""
    return type(error).__module__.startswith("mechinterp") or isinstance(error, FileNotFoundError)


def raised_at(error: BaseException) -> str:
    """" (at my_nets/tiny.py:12)": the innermost frame outside torch and the standard library."""
    if isinstance(error, SyntaxError) and error.filename:   # the frame is the import machinery's
        return f" (at {shown_path(error.filename)}:{error.lineno})"
    import torch   # here, not at the top: the figure runner reads shown_path without torch
    installed = {os.path.dirname(os.__file__), os.path.dirname(torch.__file__)}
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not any(f.filename.startswith(folder) for folder in installed)
              and "site-packages" not in f.filename and not f.filename.startswith("<")]
    if not frames:
        return ""
    return f" (at {shown_path(frames[-1].filename)}:{frames[-1].lineno})"


def shown_path(path: str) -> str:
    """A path relative to here when it is below here, else as it is."""
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    return path if relative.startswith("..") else relative


MISMATCHES_SHOWN = 3   # a width typo mismatches every layer after it: the first few say enough


def weight_mismatches(model, state: dict) -> str:
    """How `state` differs from the model's own parameters and buffers, each name and shape whole
    (the first few of each kind, then "and N more"); '' when the names and shapes all agree."""
    expected = model.state_dict()
    shapes = [f"{name} is {list(value.shape)} in the weights, {list(expected[name].shape)} in the model"
              for name, value in state.items()
              if name in expected and getattr(value, "shape", None) != expected[name].shape]
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    parts = [first_few(shapes, "; "),
             missing and f"missing from the weights: {first_few(missing, ', ')}",
             unexpected and f"in the weights but not in the model: {first_few(unexpected, ', ')}"]
    return "; ".join(part for part in parts if part)


def first_few(items: list[str], separator: str) -> str:
    """The first MISMATCHES_SHOWN items whole, then how many more."""
    more = len(items) - MISMATCHES_SHOWN
    return separator.join(items[:MISMATCHES_SHOWN]) + (f"{separator}and {more} more" if more > 0 else "")
