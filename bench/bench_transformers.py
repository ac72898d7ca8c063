"""Transformer benchmarks: the 2-layer model through its phase change on this CPU, the induction
scores of 2 layers and the 1-layer control, agreement with TransformerLens, and training speed
against it. Writes bench/results/transformers.json.

    .venv/bin/python -m bench.bench_transformers

Both models are trained from their models/zoo.yaml entries (attn-only-2l, attn-only-1l), seeds
pinned, on one thread. The phase change's seconds are the training time up to the end of its
window (phase_change_step + 250 steps, as the figure reads it) at the run's measured step rate;
on a shared machine the process's CPU time to the same step is reported beside it, with the load.
TransformerLens 3.5.1 runs in the `reference` interpreter ($REFERENCE_PYTHON, else
.venv-reference/bin/python, else this one if it imports transformer_lens; `make bench` installs
it): our weights go into its HookedTransformer with no tokenizer, and the largest relative
difference of logits, attention patterns and all_composition_scores is reported; its training
rate against ours is measured there, alternating, in one process.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from bench.common import write_results
from mechinterp.device import seed_everything
from mechinterp.models.config import read_zoo_config
from mechinterp.models.zoo import build_model
from mechinterp.transformers.composition import MODES, all_composition_scores
from mechinterp.transformers.patterns import attention_patterns
from mechinterp.transformers.phase_change import phase_change_step, snapshot_curve, states_as_models
from mechinterp.transformers.sequences import repeated_random_tokens
from mechinterp.transformers.training import SequenceTraining, ZOO_TRAINING_KEYS, train_on_sequences

ROOT = Path(__file__).resolve().parent.parent
WINDOW, HALF = 250, 20


def train_entry(name: str):
    """(trained model, training report, entry) of a zoo entry, trained here on one thread."""
    entry = read_zoo_config(ROOT / "models" / "zoo.yaml")[name]
    settings = SequenceTraining(**{k: entry[k] for k in ZOO_TRAINING_KEYS if k in entry})
    seed_everything(settings.seed)
    model = build_model(entry)
    report = train_on_sequences(model, settings)
    return model, report


def phase_change(name: str, tokens: torch.Tensor) -> dict:
    cpu_start = time.process_time()
    model, report = train_entry(name)
    cpu_seconds = time.process_time() - cpu_start
    final = {k: v.clone() for k, v in model.state_dict().items()}
    curve = snapshot_curve(states_as_models(model, report.snapshots), tokens, HALF)
    model.load_state_dict(final)
    return {"model": model, "report": report, "curve": curve, "cpu_seconds": cpu_seconds}


def reference_python() -> str | None:
    """The interpreter that has transformer_lens, or None."""
    for candidate in (os.environ.get("REFERENCE_PYTHON"), str(ROOT / ".venv-reference" / "bin" / "python")):
        if candidate and Path(candidate).is_file():
            return candidate
    return sys.executable if importlib.util.find_spec("transformer_lens") else None


def our_outputs(model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        outputs = {"logits": model(tokens)}
    outputs.update({f"pattern{l}": p for l, p in attention_patterns(model, tokens).items()})
    outputs.update({f"composition_{m}": all_composition_scores(model, m) for m in MODES})
    return outputs


def run_reference(model, tokens: torch.Tensor, python: str) -> tuple[dict, dict]:
    """TransformerLens's outputs on our weights, and the training rates, from the reference run."""
    config = {k: getattr(model, k) for k in ("d_vocab", "n_ctx", "d_model", "n_heads", "n_layers", "d_head")}
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder, n) for n in ("weights.safetensors", "config.json", "tokens.safetensors", "out.safetensors")]
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, paths[0])
        paths[1].write_text(json.dumps(config))
        save_file({"tokens": tokens.contiguous()}, paths[2])
        subprocess.run([python, "-m", "bench.transformerlens_reference", *map(str, paths)], check=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        from safetensors import safe_open
        with safe_open(paths[3], "pt") as handle:
            metadata = handle.metadata()
        return load_file(paths[3]), metadata


def max_relative_difference(ours: dict, theirs: dict) -> dict[str, float]:
    """{output: max |ours - theirs| / max |theirs|}."""
    return {key: float((ours[key].double() - theirs[key].double()).abs().max() / theirs[key].double().abs().max())
            for key in theirs}


def main() -> int:
    torch.set_num_threads(1)
    tokens = repeated_random_tokens(64, HALF, 64, torch.Generator().manual_seed(1234))
    two, one = phase_change("attn-only-2l", tokens), phase_change("attn-only-1l", tokens)
    step = phase_change_step(two["curve"])
    rate = two["report"].steps_per_second
    figures = {
        "phase_change_seconds_cpu": {"value": (step + WINDOW) / rate, "unit": "s", "goal": "<= 90",
                                     "phase_change_step": step, "steps_per_second": rate,
                                     "load_average_1min": os.getloadavg()[0]},
        # the process's own CPU time to the same step: what a quiet machine's wall time would be
        "phase_change_cpu_time_seconds": {
            "value": two["cpu_seconds"] * (step + WINDOW) / two["report"].snapshots[-1][0], "unit": "s"},
        "train_seconds_2l": {"value": two["report"].train_seconds, "unit": "s",
                             "steps": two["report"].snapshots[-1][0]},
        "induction_score_2l": {"value": two["curve"][-1][2], "goal": ">= 0.5"},
        "induction_score_1l": {"value": max(s for _, _, s in one["curve"])},
    }
    figures.update(reference_figures(two["model"], tokens))
    write_results("transformers", figures)
    return 0


def reference_figures(model, tokens: torch.Tensor) -> dict:
    """Agreement with TransformerLens and the training-speed ratio ({} without transformer_lens)."""
    python = reference_python()
    if python is None:
        print("bench transformers: transformer_lens is not installed: `make bench` installs the "
              "reference extra; skipping the comparison", file=sys.stderr)
        return {}
    theirs, metadata = run_reference(model, tokens, python)
    differences = max_relative_difference(our_outputs(model, tokens), theirs)
    rates = json.loads(metadata["rates"])
    return {"transformerlens_max_relative_difference": {
                "value": max(differences.values()), "goal": "<= 1e-5", "per_output": differences,
                "transformer_lens": metadata["transformer_lens"], "torch": metadata["torch"]},
            "steps_per_second_ours_over_transformerlens": {
                "value": rates["ours"] / rates["transformerlens"], "goal": ">= 1", **rates}}


if __name__ == "__main__":
    sys.exit(main())
