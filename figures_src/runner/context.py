"""What a figure function receives: its parameters, device, models and where to write.

The runner builds one FigureContext per figure; figure functions use `ctx.model(name)`,
`ctx.params`, `ctx.device`, `ctx.save(fig)` and return a dict of the numbers they show.
`ctx.model` and `ctx.model_meta` give only the models the figure's FIGURES entry declares under
"models": the declared models' checkpoints and configs are the figure's inputs, so a model read
without being declared would leave the figure up to date when that model changes.
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
        """Save a matplotlib figure as <id>.<suffix> in the deck's style, then close it."""
        import matplotlib.pyplot as plt
        target = self.path(suffix)
        fig.savefig(target, format=suffix)
        plt.close(fig)
        return target

    def model(self, name: str):
        """A declared zoo model in eval mode on this figure's device (trained by `make models`)."""
        from mechinterp.models.zoo import load_model
        self._require_declared(name)
        return load_model(name, self.models_dir, device=self.device)

    def model_meta(self, name: str) -> dict:
        """A declared zoo model's meta.json (config, metrics, provenance)."""
        from mechinterp.models.zoo import load_meta
        self._require_declared(name)
        return load_meta(name, self.models_dir)

    def _require_declared(self, name: str) -> None:
        if name not in self.declared_models:
            declared = ", ".join(map(repr, self.declared_models)) or "none"
            raise UndeclaredModelError(
                f"figure {self.figure_id!r} reads model {name!r}, which its FIGURES entry does not "
                f"declare (declared: {declared}); add {name!r} to \"models\" in FIGURES[{self.figure_id!r}] "
                f"in {self.script}, so the figure is remade when that model changes")


class UndeclaredModelError(LookupError):
    """A figure asked for a model its FIGURES entry does not list under "models"."""
