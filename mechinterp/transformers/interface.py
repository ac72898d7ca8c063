"""What the transformer engine needs from a model, read in one place, with one message when a model
lacks it (the interface itself is stated in model.py's docstring).

    size(model, "n_layers")          # model.n_layers, else model.cfg.n_layers (TransformerLens)
    all_heads(model)                 # [(0, 0), (0, 1), ..., (n_layers - 1, n_heads - 1)]
    checked_heads(model, ["1.0", (1, 1)])   # [(1, 0), (1, 1)], or one error naming the bad head
    check_tokens(model, tokens)      # a sequence longer than n_ctx or a token outside d_vocab
    check_hook_points(model, ["blocks.0.attn.hook_z"])   # a module the engine reads, or what to add
    size_problems({"n_heads": 0})    # ["n_heads must be a whole number >= 1, ...; it is 0"]

Read without torch (tensors are used only through their methods): the zoo's config reader checks
an AttentionOnlyTransformer entry's kwargs with size_problems before anything is built.
"""
from __future__ import annotations

from mechinterp.names import did_you_mean

REQUIRED_SIZES = ("n_layers", "n_heads", "d_vocab")   # every measurement reads these
OPTIONAL_SIZES = ("n_ctx", "d_model", "d_head")       # training and the length check read n_ctx
# AttentionOnlyTransformer's constructor defaults (tests check that the two agree)
DEFAULT_SIZES = {"d_vocab": 64, "n_ctx": 48, "d_model": 64, "n_heads": 4, "n_layers": 2, "d_head": None}
HEAD_FORMS = '(layer, head) or "layer.head"'


class ModelInterfaceError(ValueError):
    """A model, head or token batch the transformer engine cannot use; the message says why."""


def known_size(model, name: str) -> int | None:
    """model.<name>, else model.cfg.<name> (TransformerLens keeps its sizes in cfg), else None."""
    for holder in (model, getattr(model, "cfg", None)):
        value = getattr(holder, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def size(model, name: str) -> int:
    """A size the engine needs, or one ModelInterfaceError naming what is missing and how to add it."""
    value = known_size(model, name)
    if value is None:
        missing = [n for n in (*REQUIRED_SIZES, "n_ctx") if known_size(model, n) is None]
        raise ModelInterfaceError(
            f"{type(model).__name__} has no {', '.join(missing)}: the transformer engine reads "
            f"{', '.join(REQUIRED_SIZES)} (and n_ctx to train or to check sequence lengths) as "
            "whole numbers from the model or from its cfg, as TransformerLens keeps them; set e.g. "
            f"`self.{missing[0]} = ...` in {type(model).__name__}.__init__ (the interface is in "
            "mechinterp/transformers/model.py's docstring)")
    if value < 1:
        raise ModelInterfaceError(f"{type(model).__name__}'s {name} is {value}: the transformer engine "
                                  f"needs {name} >= 1 (build the model with at least one)")
    return value


def require_sizes(model) -> None:
    """Refuse, before any training, a model the engine could not measure afterwards."""
    for name in (*REQUIRED_SIZES, "n_ctx"):
        size(model, name)


def all_heads(model) -> list[tuple[int, int]]:
    """Every (layer, head), layer by layer."""
    return [(layer, head) for layer in range(size(model, "n_layers"))
            for head in range(size(model, "n_heads"))]


def _as_pair(head) -> tuple[int, int] | None:
    """(layer, head) from (1, 0), [1, 0] or "1.0"; None for anything else."""
    if isinstance(head, str):
        parts = head.strip().split(".")
        if len(parts) == 2 and all(part.isdigit() for part in parts):
            return int(parts[0]), int(parts[1])
        return None
    if isinstance(head, (tuple, list)) and len(head) == 2:
        pair = tuple(int(part) if hasattr(part, "__index__") and not isinstance(part, bool) else None
                     for part in head)
        return pair if None not in pair else None
    return None


def checked_heads(model, heads) -> list[tuple[int, int]]:
    """The heads as (layer, head) pairs of this model, or one error naming the first bad one."""
    layers, per_layer = size(model, "n_layers"), size(model, "n_heads")
    pairs = []
    for head in heads:
        pair = _as_pair(head)
        if pair is None or not (0 <= pair[0] < layers and 0 <= pair[1] < per_layer):
            raise ModelInterfaceError(
                f"head {head!r} is not a head of {type(model).__name__} ({layers} layers x "
                f"{per_layer} heads): give each head as {HEAD_FORMS} with layer 0 to {layers - 1} "
                f"and head 0 to {per_layer - 1}, e.g. ({layers - 1}, 0) or \"{layers - 1}.0\"")
        pairs.append(pair)
    return pairs


def check_length(model, positions: int) -> None:
    """A sequence longer than the model's n_ctx (when it has one) is one clear error."""
    n_ctx = known_size(model, "n_ctx")
    if n_ctx is not None and positions > n_ctx:
        raise ModelInterfaceError(
            f"the sequences have {positions} tokens, longer than {type(model).__name__}'s n_ctx of "
            f"{n_ctx} (its position embedding has {n_ctx} rows): use sequences of at most {n_ctx} "
            f"tokens (for [r, r] data, half <= {n_ctx // 2}), or a model built with n_ctx >= {positions}")


def check_tokens(model, tokens) -> None:
    """(batch, pos) token ids the model can read: pos <= n_ctx and every id in [0, d_vocab)."""
    check_length(model, tokens.shape[-1])
    d_vocab = size(model, "d_vocab")
    if tokens.numel() and not (0 <= int(tokens.min()) and int(tokens.max()) < d_vocab):
        bad = int(tokens.max()) if int(tokens.max()) >= d_vocab else int(tokens.min())
        raise ModelInterfaceError(
            f"token id {bad} is outside {type(model).__name__}'s vocabulary of d_vocab = {d_vocab}: "
            f"draw tokens from 0 to {d_vocab - 1} (e.g. repeated_random_tokens(..., model.d_vocab, ...))")


def _whole(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def size_problems(kwargs: dict) -> list[str]:
    """What keeps AttentionOnlyTransformer(**kwargs) from being a model the engine can use, one
    phrase each ([] when nothing): unknown names, sizes below 1, n_heads not dividing d_model."""
    problems = [f"{name!r} is not an argument of AttentionOnlyTransformer{did_you_mean(name, DEFAULT_SIZES)}"
                f" (it takes {', '.join(DEFAULT_SIZES)})" for name in kwargs if name not in DEFAULT_SIZES]
    sizes = {**DEFAULT_SIZES, **{k: v for k, v in kwargs.items() if k in DEFAULT_SIZES}}
    for name, value in sizes.items():
        if not (_whole(value, 1) or (name == "d_head" and value is None)):
            problems.append(f"{name} must be a whole number >= 1; it is {value!r}")
    heads, width = sizes["n_heads"], sizes["d_model"]
    if sizes["d_head"] is None and _whole(heads, 1) and _whole(width, 1) and width % heads:
        problems.append(f"n_heads must divide d_model ({width} / {heads} is not whole), or give "
                        "d_head (each head's width) as well")
    return problems


HOOK_POINTS = {"hook_pattern": "each head's attention pattern, (batch, head, query, key)",
               "hook_z": "each head's attention-weighted values, (batch, position, head, d_head)"}


def check_hook_points(model, names) -> None:
    """Each of `names` (blocks.{l}.attn.hook_pattern, hook_z) is a module of the model, else one
    LayerNotFoundError saying what the engine reads there and how to give the model one."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            from mechinterp.hooks import LayerNotFoundError    # torch: only here
            read = HOOK_POINTS.get(name.rsplit(".", 1)[-1], "an activation")
            raise LayerNotFoundError(
                f"{type(model).__name__} has no layer {name!r}, where the transformer engine reads {read}: "
                "give its attention module a submodule of that name that the forward pass sends that "
                "value through (an nn.Identity, as TransformerLens's hook points and "
                f"mechinterp/transformers/model.py do), or rename yours{_parts_of(modules, name)}")


def _parts_of(modules: dict, name: str) -> str:
    """" (blocks.0.attn has: hook_q, attn_probs, ...)": the submodules of the module that should
    hold `name` (a did-you-mean over every module when there is no such module)."""
    parent = name.rsplit(".", 1)[0]
    if parent not in modules:
        return did_you_mean(name, modules)
    parts = [child for child, _ in modules[parent].named_children()]
    return f" ({parent} has: {', '.join(parts) or 'no submodules'})"
