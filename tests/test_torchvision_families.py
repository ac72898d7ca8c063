"""Every figure family's engine runs on torchvision's ResNet-18, with torchvision's layer names.

The model is the zoo's shapes-resnet18 (torchvision.models.resnet18 trained on the shapes data by
the trained_zoo fixture): residual blocks, batch norm in eval mode, in-place ReLUs and one `relu`
module used twice per block. Each test drives one family's entry points on it and checks a claim
the family should meet: IG completeness, CKA of a layer with itself, whole-layer patching
recovering everything, a probe beating its control, and so on. Where a trained model is not needed
(the receptive field against the input gradient) an untrained torchvision resnet18 is used.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from mechinterp.activations import activation_stream, layer_features, layer_vectors, predictions
from mechinterp.data import load_dataset
from mechinterp.hooks import capture, get_module, intervene, run_with_cache, zero_units
from mechinterp.models.zoo import load_model

STAGES = ["layer1", "layer2", "layer3", "layer4"]


@pytest.fixture(scope="module")
def resnet(trained_zoo):
    return load_model("shapes-resnet18", trained_zoo, device="cpu")


@pytest.fixture(scope="module")
def shapes():
    test = load_dataset("shapes", "test", count=300)
    return test.images, test.labels


def test_the_zoo_resnet_is_torchvisions_with_its_own_layer_names(resnet, shapes):
    from mechinterp.models.layers import layer_table
    images, labels = shapes
    assert isinstance(resnet, torchvision.models.ResNet) and not resnet.training
    assert resnet.feature_layers == STAGES and resnet.classifier_layer == "fc"
    assert (predictions(resnet, images) == labels).float().mean() > 0.9
    rows = {row.name: row for row in layer_table(resnet)}
    assert rows["layer2.0.conv1"].kind == "Conv2d" and rows["layer1"].kind == "Sequential"
    assert "runs 2 times" in rows["layer1.0.relu"].note and rows["layer1.0.add"].kind == "function"
    assert rows["layer2.0.downsample"].note.startswith("shortcut branch") and rows["layer2.0"].note == "block output"
    with pytest.raises(KeyError, match=r"no layer 'layer2\.0\.conv3'.*'layer2\.0\.conv1'.*mechinterp\.models\.layers"):
        get_module(resnet, "layer2.0.conv3")


@pytest.fixture(scope="module")
def mobilenet():
    """An untrained MobileNetV3-small for 3x32x32 images, as a speaker's zoo entry builds it."""
    from mechinterp.models.zoo import build_model
    return build_model({"torchvision": "mobilenet_v3_small", "kwargs": {"num_classes": 10},
                        "input_shape": [3, 32, 32]}).eval()


def test_the_layer_listing_reaches_the_leaves_of_torchvisions_blocks_in_forward_order(mobilenet):
    from mechinterp.models.layers import layer_table
    rows = layer_table(mobilenet)
    order = [row.name for row in rows]
    named = {row.name: row for row in rows}
    assert named["features.0.0"].kind == "Conv2d" and named["features.0.0"].shape == (16, 16, 16)
    assert set(mobilenet.feature_layers) <= set(order)        # every default feature layer is listed
    assert order.index("features.0.0") < order.index("features.0") < order.index("features.1.block.0.0")
    assert (order.index("features.3.block") < order.index("features.3.add") < order.index("features.3")
            < order.index("features.4.block.0.0"))
    assert order[-1] == "classifier" and named["classifier.3"].shape == (10,)   # no containers heaped at the end
    assert named["features"].note == "block output" and named["features.3.add"].kind == "function"


def test_default_feature_layers_leave_out_squeeze_excitation_gates(mobilenet):
    from mechinterp.models.layers import layer_table
    gates = [name for name in mobilenet.conv_layers if name.endswith((".fc1", ".fc2"))]
    assert len(mobilenet.conv_layers) == 52 and len(gates) == 18
    assert mobilenet.feature_layers == [name for name in mobilenet.conv_layers if name not in gates]
    notes = {row.name: row.note for row in layer_table(mobilenet)}
    assert all("squeeze-excitation gate" in notes[name] for name in gates)


def test_a_model_that_cannot_run_a_zero_image_is_listed_in_module_order_without_shapes():
    from mechinterp.models.layers import layer_table
    flat = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(64, 4), nn.ReLU()))   # no input_shape
    rows = layer_table(flat)                                                          # 3x224x224 fails
    assert [(row.name, row.shape) for row in rows] == [("0", None), ("1.0", None), ("1.1", None), ("1", None)]


def test_the_layers_command_prints_shapes_for_the_models_input(capsys):
    from mechinterp.models.layers import main
    assert main(["mobilenet_v3_small"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "mobilenet_v3_small (MobileNetV3; output shapes for one 3x224x224 image):"
    assert lines[1].split() == ["features.0.0", "Conv2d", "16x112x112"]


def test_the_layers_command_offers_the_near_name_of_a_misspelt_zoo_model(tmp_path, monkeypatch):
    from mechinterp.models.layers import main
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "zoo.yaml").write_text(
        "models:\n  lab-mnv3: {torchvision: mobilenet_v3_small, weights: ../mnv3.pth}\n"
        "  lab-resnet: {torchvision: resnet18, weights: ../resnet.pth}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["lab-mnv4"])
    assert str(stop.value) == ("layers: 'lab-mnv4' is neither a model of models/zoo.yaml nor a torchvision "
                               "model (did you mean lab-mnv3, lab-resnet?): give a zoo model's name, or a "
                               "torchvision architecture's (torchvision.models.list_models())")
    with pytest.raises(SystemExit, match=r"\(models/zoo.yaml names lab-mnv3, lab-resnet\): give"):
        main(["qqqqzz"])


def test_intervening_on_a_reused_relu_is_refused_naming_its_block(resnet, shapes):
    with pytest.raises(ValueError, match=r"'layer1\.0\.relu'.*more than once.*'layer1\.0'"):
        with intervene(resnet, {"layer1.0.relu": zero_units([0])}):
            resnet(shapes[0][:2])


# --- feature visualisation and dataset examples ----------------------------------------------

def test_rendering_raises_each_stage_unit_above_its_start(resnet):
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import render
    goal = obj.channel("layer2", range(4))
    result = render(resnet, goal, steps=24, snapshot_steps=(0,), progress=False)
    assert result.images.shape == (4, 3, 32, 32) and 0 <= result.images.min() <= result.images.max() <= 1
    with torch.no_grad(), capture(resnet, ["layer2"]) as start:
        resnet(result.snapshots[0])
    assert (result.objective_values > goal(dict(start)) + 0.1).all()


def test_top_dataset_examples_of_a_stage_are_its_strongest_images(resnet, shapes):
    from mechinterp.featvis.dataset_examples import receptive_field, receptive_field_crops, top_activating_examples
    images = shapes[0]
    top = top_activating_examples(resnet, "layer1", images, k=5, progress=False)
    per_image = run_with_cache(resnet, images, ["layer1"])[1]["layer1"].flatten(2).amax(2).T
    assert torch.allclose(top.values, per_image.topk(5, dim=1).values)
    field = receptive_field(resnet, "layer1", (3, 32, 32))
    assert receptive_field_crops(images, top, field, unit=3).shape == (5, 3, *field.size)


def _linearised_resnet() -> nn.Module:
    """An untrained resnet18 whose ReLUs are identities and whose max pool averages (same window):
    every weight is non-zero, so a unit's input gradient is non-zero exactly on its field."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=8).eval()
    for name, module in list(model.named_modules()):
        parent, _, attribute = name.rpartition(".")
        if isinstance(module, nn.ReLU):
            setattr(model.get_submodule(parent), attribute, nn.Identity())
    model.maxpool = nn.AvgPool2d(3, stride=2, padding=1)
    return model


def test_receptive_field_of_a_residual_stage_is_the_support_of_its_input_gradient():
    from mechinterp.featvis.dataset_examples import receptive_field
    model = _linearised_resnet()
    image = torch.rand(1, 3, 64, 64, requires_grad=True)
    for layer in ("layer1", "layer1.0.conv1"):
        field = receptive_field(model, layer, (3, 64, 64))
        with capture(model, [layer], detach=False) as acts:
            model(image)
        for y, x in [(0, 0), (7, 9), (15, 15)]:
            image.grad = None
            acts[layer][0, 1, y, x].backward(retain_graph=True)
            rows, cols = image.grad[0].abs().sum(0).nonzero().unbind(1)
            top, left, bottom, right = field.box(y, x)
            assert (rows.min().item(), cols.min().item()) == (max(top, 0), max(left, 0))
            assert (rows.max().item() + 1, cols.max().item() + 1) == (min(bottom, 64), min(right, 64))
    assert receptive_field(model, "layer1", (3, 64, 64)).size == (43, 43)


# --- circuits: weights, ablation, patching, integrated gradients ------------------------------

def test_circuit_weights_fold_the_batch_norm_that_reads_the_conv(resnet):
    from mechinterp.circuits.weights import conv_weight, unit_circuit
    conv, norm = resnet.layer1[0].conv2, resnet.layer1[0].bn2
    weight = conv_weight(resnet, "layer1.0.conv2")
    expected = conv.weight * (norm.weight / torch.sqrt(norm.running_var + norm.eps))[:, None, None, None]
    assert torch.allclose(weight, expected.detach())
    activation = torch.rand(2, 64, 8, 8)
    shift = norm.bias - norm.running_mean * norm.weight / torch.sqrt(norm.running_var + norm.eps)
    folded = nn.functional.conv2d(activation, weight, padding=1) + shift[None, :, None, None]
    assert torch.allclose(folded, norm(conv(activation)), atol=1e-4)
    circuit = unit_circuit(resnet, "layer1.0.conv2", target_unit=5, count=3)
    assert all(kernel.shape == (3, 3) for kernel in circuit.kernels.values())
    assert circuit.excitatory[0].excitation >= circuit.excitatory[-1].excitation > 0


def test_ablating_a_whole_stage_ruins_the_model_and_one_unit_barely_matters(resnet, shapes):
    from mechinterp.circuits.ablation import ablation_effect
    images, labels = shapes
    everything = ablation_effect(resnet, images, labels, "layer3", units=None, method="mean", reference=images)
    assert everything.clean_accuracy > 0.9 and everything.ablated_accuracy < 0.4
    one = ablation_effect(resnet, images, labels, "layer3", units=[7], method="mean", reference=images)
    assert abs(one.ablated_accuracy - one.clean_accuracy) < 0.1 and np.isfinite(one.loss_effect_size)


def test_patching_a_whole_stage_recovers_all_of_the_donors_verdict(resnet, shapes):
    from mechinterp.circuits.patching import patch_each_layer, patch_each_unit
    images, labels = shapes
    predicted = predictions(resnet, images)
    targets = torch.nonzero((predicted == labels) & (labels == 0))[:4, 0]
    donors = torch.nonzero((predicted == labels) & (labels == 3))[:4, 0]
    recovered = patch_each_layer(resnet, images[targets], images[donors], STAGES)
    for layer in STAGES:
        assert torch.allclose(recovered[layer], torch.ones(4), atol=1e-4), layer
    units = patch_each_unit(resnet, images[targets], images[donors], "layer4", units=range(16))
    assert units.recovered.shape == (4, 16) and torch.isfinite(units.recovered).all()


def test_integrated_gradients_are_complete_on_pixels_and_on_a_stage(resnet, shapes):
    from mechinterp.attribution.gradients import integrated_gradients, layer_integrated_gradients
    images, labels = shapes[0][:4], shapes[1][:4]
    for attribute in (integrated_gradients,
                      lambda *args, **kwargs: layer_integrated_gradients(*args[:2], "layer2", *args[2:], **kwargs)):
        coarse, fine = (attribute(resnet, images, target=labels, steps=steps) for steps in (4, 48))
        assert torch.isfinite(fine.attributions).all()
        relative = fine.completeness_gap.abs().mean() / fine.output_difference.abs().mean()
        assert relative < 0.02 and fine.completeness_gap.abs().mean() < coarse.completeness_gap.abs().mean()


# --- sparse autoencoders and adversarial examples ---------------------------------------------

@pytest.fixture(scope="module")
def stage_sae(resnet, shapes):
    from mechinterp.superposition.sae import TopKSAE
    from mechinterp.superposition.sae_training import row_batches, train_sae
    sae = TopKSAE(d_in=128, n_latents=256, k=16, seed=0)
    first = next(activation_stream(resnet, "layer2", shapes[0], images_per_batch=16))   # what figures stream
    vectors = torch.cat([first, layer_vectors(resnet, "layer2", shapes[0])])
    train_sae(sae, row_batches(vectors, size=256, seed=0), steps=200, lr=3e-3)
    return sae.eval()


def test_an_sae_on_a_stage_reconstructs_it_and_keeps_the_models_answers(resnet, shapes, stage_sae):
    from mechinterp.superposition.sae_metrics import accuracy_with_sae, evaluate_sae
    images, labels = shapes
    metrics = evaluate_sae(stage_sae, layer_vectors(resnet, "layer2", images))
    assert metrics["explained_variance"] > 0.6 and metrics["l0"] <= 16
    clean, spliced = accuracy_with_sae(resnet, "layer2", stage_sae, images, labels)
    assert clean > 0.9 and spliced > 0.5


def test_attacks_stay_in_their_budget_flip_answers_and_move_sae_features(resnet, shapes, stage_sae):
    from mechinterp.adversarial import fgsm, hijacked_features, pgd
    images, labels = shapes[0][:48], shapes[1][:48]
    adversarial = pgd(resnet, images, labels, epsilon=0.03, steps=8)
    assert (adversarial - images).abs().max() <= 0.03 + 1e-6 and 0 <= adversarial.min() <= adversarial.max() <= 1
    clean_accuracy = (predictions(resnet, images) == labels).float().mean()
    assert (predictions(resnet, adversarial) == labels).float().mean() < clean_accuracy - 0.3
    assert (fgsm(resnet, images, labels, 0.03) - images).abs().max() <= 0.03 + 1e-6
    vectors = [layer_vectors(resnet, "layer2", batch) for batch in (images, adversarial)]
    hijack = hijacked_features(stage_sae, *vectors, top_k=4)
    assert len(hijack.increased) == 4 and 0 < hijack.top_share <= 1


# --- similarity, matching, probes, TCAV, geometry, first-layer filters ------------------------

def test_similarity_measures_give_one_for_a_stage_with_itself_and_less_across_models(resnet, trained_zoo, shapes):
    from mechinterp.representations.similarity import linear_cka, mutual_knn_alignment, similarity_matrix, svcca
    images = shapes[0]
    ours = load_model("shapes-cnn-a", trained_zoo, device="cpu")
    theirs = layer_features(resnet, images, STAGES + ["fc"], pool="mean")
    features = layer_features(ours, images, ["relu1", "relu2", "relu3", "fc"], pool="mean")
    x = theirs["layer3"]
    assert linear_cka(x, x) == pytest.approx(1.0) and mutual_knn_alignment(x, x) == pytest.approx(1.0)
    assert svcca(x, x) == pytest.approx(1.0, abs=1e-6)
    matrix = similarity_matrix(theirs, features, "linear_cka")
    assert matrix.shape == (5, 4) and ((matrix > 0) & (matrix < 1 + 1e-9)).all()
    shuffled = features["fc"][torch.randperm(len(images), generator=torch.Generator().manual_seed(0))]
    assert linear_cka(theirs["fc"], features["fc"]) > 0.5 > linear_cka(theirs["fc"], shuffled)


def test_units_match_themselves_and_beat_the_shuffled_baseline_across_models(resnet, trained_zoo, shapes):
    from mechinterp.universality.matching import match_units, shuffled_matching, unit_correlations
    images = shapes[0]
    ours = load_model("shapes-cnn-a", trained_zoo, device="cpu")
    theirs = run_with_cache(resnet, images, ["layer1"])[1]["layer1"]          # (N, 64, 8, 8)
    mine = run_with_cache(ours, images, ["relu3"])[1]["relu3"]                # (N, 64, 8, 8)
    itself = match_units(unit_correlations(theirs, theirs))
    assert all(a == b for a, b in itself.pairs) and np.allclose(itself.correlations, 1.0, atol=1e-4)
    across = match_units(unit_correlations(theirs, mine))
    assert across.mean_correlation > shuffled_matching(theirs, mine, seed=0).mean_correlation + 0.05


def test_probes_read_the_class_from_the_last_stage_far_above_their_control(resnet, shapes):
    from mechinterp.representations.probes import probe_layers
    results = probe_layers(resnet, *shapes, ["layer4"], pool="mean")
    assert results["layer4"].accuracy > 0.8 > results["layer4"].control_accuracy + 0.3
    assert results["layer4"].accuracy > results["layer4"].chance + 0.5


def test_tcav_scores_a_concept_against_random_sets_at_a_stage(resnet, shapes):
    from mechinterp.attribution.tcav import tcav
    images, labels = shapes
    rng = torch.Generator().manual_seed(0)
    random_sets = [images[torch.randperm(len(images), generator=rng)[:30]] for _ in range(3)]
    result = tcav(resnet, "layer3", images[labels == 2][:30], random_sets, images[labels == 3][:20], class_index=3)
    assert len(result.scores) == 3 and all(0 <= s <= 1 for s in result.scores + result.null_scores)
    assert min(result.cav_accuracies) > 0.7 and 0 <= result.p_value <= 1


def test_geometry_of_the_last_stage_clusters_by_class_better_than_pixels(resnet, shapes):
    from mechinterp.representations.geometry import clustering_purity, interpolation_path, twonn_dimension
    images, labels = shapes
    stage = layer_features(resnet, images, ["layer4"], pool="mean")["layer4"]
    pixels = images.flatten(1)
    assert clustering_purity(stage, labels, 8)[0] > clustering_purity(pixels, labels, 8)[0] + 0.2
    assert 1 < twonn_dimension(stage) < 512
    path = interpolation_path(resnet, images[0], images[1], steps=9, layer="layer3")
    assert path.features.shape == (9, 256 * 2 * 2)
    assert path.classes[0] == predictions(resnet, images[:1])[0] and path.classes[-1] == predictions(resnet, images[1:2])[0]


def test_first_layer_filters_are_the_7x7_stem(resnet):
    from mechinterp.universality.filters import first_layer_filters
    filters = first_layer_filters(resnet)
    assert filters.shape[0] == 64 and 7 in filters.shape[1:3] and np.isfinite(filters).all()


def test_the_gpu_profiles_googlenet_figure_runs_here_on_imported_weights(trained_zoo, tmp_path, run_figure):
    """The zoo never trains shapes-googlenet on the CPU, but weights made elsewhere load here: the
    gpu profile's figure runs on an untrained GoogLeNet with its zoo entry's layer names."""
    import shutil
    import yaml
    from mechinterp.models.config import read_zoo
    from mechinterp.models.zoo import train_zoo
    models = tmp_path / "models"
    for name in ("shapes-cnn-a", "shapes-resnet18"):
        shutil.copytree(trained_zoo / name, models / name)
    entry = read_zoo(trained_zoo / "zoo.yaml").entries["shapes-googlenet"]
    torch.manual_seed(0)
    torch.save(torchvision.models.googlenet(**entry["kwargs"]).state_dict(), tmp_path / "googlenet.pth")
    (models / "zoo.yaml").write_text(yaml.safe_dump({"models": {"shapes-googlenet": {
        **entry, "weights": str(tmp_path / "googlenet.pth")}}}))
    train_zoo(models / "zoo.yaml", models, device="cpu")
    (tmp_path / "out").mkdir()
    numbers = run_figure("universality/googlenet-cka", models, tmp_path / "out", params={"images": 60})
    pair = numbers["pairs"]["ResNet-18 vs GoogLeNet"]
    assert pair["layers_b"] == entry["feature_layers"] + ["fc"]
    # an untrained GoogLeNet's logits are the same for every image (CKA undefined): its layers only
    inception = np.array(pair["linear_cka"], dtype=float)[:, :-1]
    assert inception.shape == (5, 6) and np.isfinite(inception).all() and (inception > 0).all()
