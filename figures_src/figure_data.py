"""The data a figure reads, counted by a param: the first params[param] images of a split of its
first declared model's data, with a message naming the figure and the param when the model's data
has fewer (a digits model has 1,347 training images; a figure written for shapes asks for 4,000).
"""
from figures_src.runner.context import FigureInputError


def counted_data(ctx, split: str, param: str, name: str | None = None):
    """ctx.dataset(name, split, count=params[param]) for the first declared model (or `name`)."""
    name = name or ctx.declared_models[0]
    count = ctx.params[param]
    try:
        return ctx.dataset(name, split, count=count)
    except ValueError as error:
        if "fewer than count" not in str(error):    # the loader's size error; others are not ours
            raise
        available = str(error).split(" has ", 1)[1].split(" ", 1)[0]
        raise FigureInputError(
            f"figure {ctx.figure_id!r}: params {param!r} asks for {count} {split} images, but model "
            f"{name!r}'s data has {available}: set {param!r} in FIGURES[{ctx.figure_id!r}][\"params\"] "
            f"in {ctx.script} to at most {available}") from None
