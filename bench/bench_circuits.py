"""Benchmark the circuits engine: our integrated gradients against Captum's, and batched patching.

    .venv/bin/python -m bench.bench_circuits            # writes bench/results/circuits.json

1. Integrated gradients (input and layer) on the same model, inputs, steps, rule and internal
   batch size, ours and Captum's, timed alternately in one run (the machine is noisy, so the
   ratio is what counts). The attributions are checked to agree before anything is timed.
2. Patching every unit of a layer from donors into targets: batched over units (one forward
   pass per chunk of units) against one forward pass per unit.

The model is the zoo's shapes-cnn-a when it has been trained (models/), else the same
architecture untrained: the cost of a forward and backward pass does not depend on the weights.
"""
from __future__ import annotations

from bench.common import alternate, reference_cnn, write_results
from mechinterp.attribution.gradients import integrated_gradients, layer_integrated_gradients
from mechinterp.circuits.patching import patch_each_unit, patch_each_unit_sequential
from mechinterp.device import keep_freed_memory, pick_device

REPEATS = 5
STEPS = 64
INTERNAL_BATCH = 256
EXAMPLES = 16



def bench_integrated_gradients(model, inputs, targets) -> dict:
    from captum.attr import IntegratedGradients, LayerIntegratedGradients
    ours = lambda: integrated_gradients(model, inputs, targets, steps=STEPS, rule="gausslegendre",
                                        internal_batch_size=INTERNAL_BATCH)
    captum = IntegratedGradients(model)
    theirs = lambda: captum.attribute(inputs, target=targets, n_steps=STEPS, method="gausslegendre",
                                      internal_batch_size=INTERNAL_BATCH)
    reference = theirs()
    difference = float((ours().attributions - reference).abs().max() / reference.abs().max())
    ours_s, theirs_s = alternate(ours, theirs, REPEATS)
    layer = model.feature_layers[1]
    module = dict(model.named_modules())[layer]
    layer_ours = lambda: layer_integrated_gradients(model, inputs, layer, targets, steps=STEPS,
                                                    internal_batch_size=INTERNAL_BATCH)
    layer_captum = LayerIntegratedGradients(model, module)
    layer_theirs = lambda: layer_captum.attribute(inputs, target=targets, n_steps=STEPS,
                                                  internal_batch_size=INTERNAL_BATCH)
    layer_reference = layer_theirs()
    layer_difference = float((layer_ours().attributions - layer_reference).abs().max()
                             / layer_reference.abs().max())
    layer_ours_s, layer_theirs_s = alternate(layer_ours, layer_theirs, REPEATS)
    return {
        "ig_ours_seconds": {"value": ours_s, "unit": "s"},
        "ig_captum_seconds": {"value": theirs_s, "unit": "s"},
        "ig_captum_over_ours": {"value": theirs_s / ours_s, "unit": "x"},
        "ig_max_difference": {"value": difference, "unit": "of the largest attribution"},
        "layer_ig_ours_seconds": {"value": layer_ours_s, "unit": "s"},
        "layer_ig_captum_seconds": {"value": layer_theirs_s, "unit": "s"},
        "layer_ig_captum_over_ours": {"value": layer_theirs_s / layer_ours_s, "unit": "x"},
        "layer_ig_max_difference": {"value": layer_difference, "unit": "of the largest attribution"},
    }


def bench_patching(model, images, labels) -> dict:
    """Targets of class 0 and donors of class 1 (by label, so an untrained model works too)."""
    target = images[labels == 0][:4]
    donor = images[labels == 1][:4]
    layer = model.feature_layers[-1]
    classes = {"target_class": 0, "donor_class": 1}
    batched = lambda: patch_each_unit(model, target, donor, layer, units_per_batch=64, **classes)
    sequential = lambda: patch_each_unit_sequential(model, target, donor, layer, **classes)
    difference = float((batched().recovered - sequential().recovered).abs().max())
    batched_s, sequential_s = alternate(batched, sequential, repeats=3)
    return {
        "patching_units": {"value": len(batched().units), "unit": f"units of {layer}"},
        "patching_pairs": {"value": len(target), "unit": "pairs"},
        "patching_batched_seconds": {"value": batched_s, "unit": "s"},
        "patching_one_at_a_time_seconds": {"value": sequential_s, "unit": "s"},
        "patching_speedup": {"value": sequential_s / batched_s, "unit": "x"},
        "patching_max_abs_difference": {"value": difference, "unit": "recovered fraction"},
    }


def main() -> None:
    keep_freed_memory()                  # as the figure workers run
    device = pick_device()
    model, description = reference_cnn(device)
    from mechinterp.data import load_dataset
    test = load_dataset("shapes", "test", count=256)
    images = test.images.to(device)
    inputs, targets = images[:EXAMPLES], test.labels[:EXAMPLES].to(device)
    print(f"model: {description} on {device}; IG: {EXAMPLES} inputs, {STEPS} steps, "
          f"internal batch {INTERNAL_BATCH}")
    figures = {"device": {"value": str(device), "unit": ""},
               "model": {"value": description, "unit": ""}}
    figures.update(bench_integrated_gradients(model, inputs, targets))
    figures.update(bench_patching(model, images, test.labels.to(device)))
    write_results("circuits", figures)


if __name__ == "__main__":
    main()
