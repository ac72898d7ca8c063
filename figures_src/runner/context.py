"""What a figure function receives: its parameters, device, models and where to write.

The runner builds one FigureContext per figure; figure functions use `ctx.model(name)`,
`ctx.params`, `ctx.device`, `ctx.save(fig)` and return a dict of the numbers they show.
`ctx.params` are the FIGURES entry's params for the run's profile; reading one it lacks is an
error naming the entry and the nearest names.
`ctx.model` and `ctx.model_meta` give only the models the figure's FIGURES entry declares under
"models": the declared models' checkpoints and configs are the figure's inputs, so a model read
without being declared would leave the figure up to date when that model changes; a declared model
the figure never reads (`check_all_read`, after it returns) would make it stale for nothing, and is
refused too.
`ctx.dataset(name, split, count=...)` gives a declared model's own data (its zoo entry's dataset),
`ctx.layer(model)` the layer params["layer"] names (a module name or an index into the model's
feature_layers), `ctx.conv_layers(model)` its conv layers for a figure that reads them
(`ctx.wrong_layer_kind` is that message for any kind of layer a figure needs; `ctx.require_images`
for a figure that draws inputs as images) and `ctx.class_index(class_names, param)` the class a param names, each with a message
naming the figure and what to change when it does not fit that model.
Everything is written into a private staging folder that the runner renames into place only
when the figure succeeds, so a failing or interrupted figure never leaves half-written files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FigureContext:
    figure_id: str
    params: dict[str, Any]
    profile: str                    # "quick" (tests), "full" (the final deck) or "gpu" (full + GPU-only models)
    device: Any                     # torch.device, chosen by the runner's --device option
    staging_dir: Path               # outputs go here first; the runner moves them into place
    models_dir: Path
    seed: int = 0
    declared_models: tuple[str, ...] = ()   # the FIGURES entry's "models": all ctx.model may load
    script: str = "the figure's script"     # where that entry is, for the message when it is not
    written: list[Path] = field(default_factory=list)
    read: set[str] = field(default_factory=set)    # the declared models ctx.model/model_meta gave
    warnings: list[str] = field(default_factory=list)   # said beside "made" (text that overprints)

    def __post_init__(self):
        self.params = FigureParams(self.params, f"FIGURES[{self.figure_id!r}][\"params\"] in {self.script}",
                                   self.profile)

    @property
    def name(self) -> str:
        """The last part of the id: 'featvis/from-noise' -> 'from-noise'."""
        return self.figure_id.rsplit("/", 1)[-1]

    def path(self, suffix: str) -> Path:
        """Staging path of this figure's output with the given suffix ('png', 'svg', 'npz')."""
        target = self.staging_dir / f"{self.name}.{suffix}"
        if target not in self.written:
            self.written.append(target)
        return target

    def save(self, fig, suffix: str = "png") -> Path:
        """Save a matplotlib figure as <id>.<suffix> in the deck's style, then close it; titles,
        labels or annotations that overprint each other are noted in `warnings`."""
        import matplotlib.pyplot as plt
        from figures_src.runner.style import overlapping_text
        target = self.path(suffix)
        fig.savefig(target, format=suffix)
        overlaps = overlapping_text(fig)
        if overlaps:
            more = f" and {len(overlaps) - 2} more" if len(overlaps) > 2 else ""
            self.warnings.append(f"{target.name}: titles or labels overprint each other ({'; '.join(overlaps[:2])}{more}): "
                                 "give them room: plt.subplots(..., layout=\"constrained\"), or "
                                 "fig.tight_layout() before ctx.save")
        plt.close(fig)
        return target

    def model(self, name: str):
        """A declared zoo model in eval mode on this figure's device (trained by `make models`)."""
        from mechinterp.models.zoo import load_model
        self._require_declared(name)
        self.read.add(name)
        return load_model(name, self.models_dir, device=self.device)

    def model_meta(self, name: str) -> dict:
        """A declared zoo model's meta.json (config, metrics, provenance)."""
        from mechinterp.models.zoo import load_meta
        self._require_declared(name)
        self.read.add(name)
        return load_meta(name, self.models_dir)

    def dataset(self, name: str, split: str = "test", count: int | None = None, param: str | None = None):
        """A declared model's own data: its zoo entry's dataset, dataset_options and data_root,
        resized to its input_shape when the entry says resize_dataset: true; the first `count`
        (params[param], named in the message when that data cannot give them)."""
        from mechinterp.data import TooFewImages
        from mechinterp.models.inputs import entry_dataset
        entry = self.model_meta(name)["config"]
        if "dataset" not in entry:
            raise FigureInputError(f"figure {self.figure_id!r} reads the data of model {name!r}, whose "
                                   f"zoo entry names no dataset: add `dataset: <name>` to {name!r} in "
                                   "models/zoo.yaml (the data it was trained or evaluated on)")
        try:
            return entry_dataset(entry, split, count)
        except TooFewImages as error:
            if param is None:
                raise
            examples = "images" if len(entry.get("input_shape") or (0, 0, 0)) == 3 else "examples"
            raise FigureInputError(f"figure {self.figure_id!r}: params {param!r} asks for {count} {split} "
                                   f"{examples}, but the data of model {name!r} has {error.available}: set {param!r} "
                                   f"in FIGURES[{self.figure_id!r}][\"params\"] in {self.script} to at most "
                                   f"{error.available} (for each profile)") from None

    def first_model(self) -> tuple[str, object]:
        """(name, model): the first model the FIGURES entry declares (a single-model figure's)."""
        return self.declared_models[0], self.model(self.declared_models[0])

    def counted_dataset(self, split: str, param: str, name: str | None = None):
        """params[param] images of `split` of the first declared model's data (or model `name`'s)."""
        return self.dataset(name or self.declared_models[0], split, count=self.params[param], param=param)

    def layer(self, model, param: str = "layer") -> str:
        """The layer params[param] names: a module name of `model`, or an index into its
        feature_layers (-1: the last), so one setting fits models with other layer names."""
        wanted = self.params[param]
        if isinstance(wanted, int) and -len(model.feature_layers) <= wanted < len(model.feature_layers):
            return model.feature_layers[wanted]
        if isinstance(wanted, str) and wanted in dict(model.named_modules()):
            return wanted
        from mechinterp.names import did_you_mean
        fix = (f"set {param!r} in FIGURES[{self.figure_id!r}][\"params\"] in {self.script} to a module name or "
               f"an index into its feature_layers ({', '.join(model.feature_layers)})")
        if isinstance(wanted, str):   # the engine's message: the nearest of all its modules, and the listing
            from mechinterp.hooks import LayerNotFoundError, get_module
            try:
                get_module(model, wanted)
            except LayerNotFoundError as error:
                raise FigureInputError(f"figure {self.figure_id!r}: params {param!r}: {error.args[0]}; {fix}") from None
        raise FigureInputError(
            f"figure {self.figure_id!r}: params {param!r} is {wanted!r}, which is not a layer of "
            f"{getattr(model, 'zoo_name', 'the model')!r}{did_you_mean(str(wanted), model.feature_layers)}; {fix}")

    def class_index(self, class_names, param: str, name: str | None = None) -> int:
        """The index in the model's data's class_names of the class params[param] names (or
        `name`, one of a list param), with a message naming those classes when there is none."""
        wanted = self.params[param] if name is None else name
        if wanted in class_names:
            return list(class_names).index(wanted)
        from mechinterp.names import did_you_mean
        raise FigureInputError(
            f"figure {self.figure_id!r}: params {param!r} names class {wanted!r}, which the model's "
            f"dataset does not have{did_you_mean(wanted, class_names)} (its classes: "
            f"{', '.join(map(str, class_names))}): set {param!r} in "
            f"FIGURES[{self.figure_id!r}][\"params\"] in {self.script}")

    def conv_layers(self, model) -> list[str]:
        """The model's conv layers, for a figure that reads conv kernels or channel maps; a model
        with none (an MLP) gets the one message of wrong_layer_kind."""
        if not model.conv_layers:
            raise self.wrong_layer_kind(model, "conv layers (Conv2d: their kernels and channel maps)")
        return list(model.conv_layers)

    def require_images(self, model, draws: str, instead: str) -> None:
        """Nothing for a model of images; for a model of vectors the FigureInputError saying that
        the figure `draws` images, and what to use `instead`."""
        shape = getattr(model, "input_shape", None)
        if shape is None or len(shape) == 3:
            return
        from mechinterp.models.describe import inputs_text
        name = getattr(model, "zoo_name", None) or (self.declared_models or ("the model",))[0]
        raise FigureInputError(f"figure {self.figure_id!r} draws {draws}, so it needs a model of images; "
                               f"{name!r} takes {inputs_text(tuple(shape))}: {instead}, or declare an image "
                               f"model in \"models\" in FIGURES[{self.figure_id!r}] in {self.script}")

    def wrong_layer_kind(self, model, needs: str, param: str | None = None, layer: str | None = None,
                         because: str | None = None):
        """The FigureInputError for a model (or its layer `layer`) that is not what the figure reads:
        the figure, the model, what it needs (and `because`, what the layer is instead), the layers
        the model has, and the param to set (or, with no param, to declare another model)."""
        name = getattr(model, "zoo_name", None) or (self.declared_models or ("the model",))[0]
        where = f"FIGURES[{self.figure_id!r}]"
        fix = (f"set {param!r} in {where}[\"params\"] in {self.script} to a layer that has it, if "
               f"{name!r} has one, or declare another model in \"models\"" if param else
               f"declare a model that has such a layer in \"models\" in {where} in {self.script}")
        read = f"layer {layer!r} of model {name!r}" if layer else f"model {name!r}"
        read += f" lacks ({because}; " if because else " lacks ("
        return FigureInputError(
            f"figure {self.figure_id!r} needs {needs}, which {read}feature_layers: "
            f"{', '.join(model.feature_layers) or 'none'}; conv_layers: {', '.join(model.conv_layers) or 'none'}): {fix}")

    def _require_declared(self, name: str) -> None:
        if name not in self.declared_models:
            declared = ", ".join(map(repr, self.declared_models)) or "none"
            where = self.script_line()
            raise UndeclaredModelError(
                f"figure {self.figure_id!r} reads model {name!r}{f' (at {where})' if where else ''}, which "
                f"its FIGURES entry does not declare (declared: {declared}). To show a declared model, "
                f"make {'that line' if where else 'the function'} read it (ctx.first_model() reads the "
                f"first); to show {name!r}, add {name!r} to \"models\" in FIGURES[{self.figure_id!r}] in "
                f"{self.script}, so the figure is remade when that model changes")

    def script_line(self) -> str | None:
        """'figures_src/mine.py:96': the line of the figure's script that is calling in now."""
        import traceback
        script = Path(self.script).resolve()
        lines = [frame.lineno for frame in traceback.extract_stack() if Path(frame.filename).resolve() == script]
        return f"{self.script}:{lines[-1]}" if lines else None

    def check_all_read(self, required) -> None:
        """After the figure returns: every required model (the declared ones this run's profile
        builds) was read, else one message naming the figure, the models it never read and what to do."""
        unread = [name for name in dict.fromkeys(required) if name not in self.read]
        if unread:
            names, one = ", ".join(map(repr, unread)), len(unread) == 1
            it, changes = ("it", "it changes") if one else ("them", "they change")
            raise UnreadModelError(
                f"figure {self.figure_id!r} declares {'model' if one else 'models'} {names} in \"models\" "
                f"but never read {it} (ctx.model, ctx.model_meta or ctx.dataset): its outputs do not show "
                f"{it}, yet would be remade whenever {changes}: remove {names} from \"models\" in "
                f"FIGURES[{self.figure_id!r}] in {self.script}, or read {it} in the figure's function "
                "(a figure that trains its own models, such as the superposition sweeps, declares none)")


class UndeclaredModelError(LookupError):
    """A figure asked for a model its FIGURES entry does not list under "models"."""


class UnreadModelError(LookupError):
    """A figure's FIGURES entry declares a model the figure never read."""


class FigureInputError(ValueError):
    """A figure's params or its model's zoo entry do not fit what the figure reads."""


class MissingParamError(KeyError):
    """A figure reads a param its FIGURES entry does not give in this profile."""

    def __str__(self) -> str:       # KeyError's own would quote the whole message
        return str(self.args[0])


class FigureParams(dict):
    """A figure's params for this profile; a name they lack is a MissingParamError naming where
    to add it and the nearest names they have, not a bare KeyError."""

    def __init__(self, values: dict, where: str, profile: str):
        super().__init__(values)
        self.where, self.profile = where, profile

    def __missing__(self, name):
        import difflib
        near = difflib.get_close_matches(str(name), list(map(str, self)), n=3)
        raise MissingParamError(f"no param {name!r} in the {self.profile} profile"
                                f"{' (did you mean ' + ', '.join(near) + '?)' if near else ''}; it has "
                                f"{', '.join(map(str, self)) or 'none'}: add it to {self.where}")
