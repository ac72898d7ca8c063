"""The feature-visualisation figures, run end to end (quick profile) on the trained zoo.

Checks what the slides claim: optimisation drives the featured unit past anything in the dataset,
the Fourier/decorrelated recipe keeps the activation while dropping the high frequencies, every
channel of every conv layer is rendered, visualisations beat their unit's dataset examples, the
diversity term makes the images less alike, deepdream amplifies its layer, and the tuning figure
counts the curve family it draws.
"""
import pytest
from torch import nn

from mechinterp.featvis.dataset_examples import receptive_field
from mechinterp.models.zoo import load_model


@pytest.fixture(scope="module")
def model(trained_zoo):
    return load_model("shapes-cnn-a", trained_zoo, device="cpu")


def test_from_noise_climbs_past_the_dataset_maximum(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("featvis/from-noise", trained_zoo, tmp_path)
    values = [numbers["activation_by_step"][str(step)] for step in numbers["steps"]]
    assert values == sorted(values) and values[0] == numbers["activation_start"]
    assert numbers["activation_final"] > numbers["dataset_max"] and numbers["sigmas_beyond_dataset_max"] > 1


def test_fourier_recipe_keeps_the_activation_without_the_high_frequencies(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("featvis/regularisation", trained_zoo, tmp_path)
    none, penalised, recipe = (numbers[k] for k in ("none", "l2_tv_jitter", "fourier_decorrelated_transforms"))
    assert recipe["high_frequency_fraction"] < none["high_frequency_fraction"] - 0.1
    assert penalised["high_frequency_fraction"] < none["high_frequency_fraction"]
    assert recipe["activation"] > 0.7 * none["activation"] and recipe["activation"] > penalised["activation"]


def test_layer_grid_renders_every_channel_of_every_conv_layer(trained_zoo, tmp_path, run_figure, model):
    numbers = run_figure("featvis/layer-grid", trained_zoo, tmp_path)
    modules = dict(model.named_modules())
    channels = {layer: modules[layer].out_channels for layer in model.conv_layers}
    assert {layer: row["channels"] for layer, row in numbers["layers"].items()} == channels
    assert numbers["units_total"] == sum(channels.values())
    layers = numbers["layers"]
    assert layers[model.conv_layers[-1]]["fraction_beyond_dataset_max"] > 0.5
    assert layers[model.conv_layers[-1]]["median_sigmas_beyond_dataset_max"] > 0


def test_visualisations_beat_their_units_dataset_examples(trained_zoo, tmp_path, run_figure, model):
    numbers = run_figure("featvis/dataset-examples", trained_zoo, tmp_path)
    ratios = [unit["visualisation"] / unit["dataset_max"] for unit in numbers["units"].values()]
    assert min(ratios) == pytest.approx(numbers["min_ratio"]) and numbers["min_ratio"] > 1
    assert numbers["receptive_field"] == list(receptive_field(model, numbers["layer"], model.input_shape).size)


def quick_params(figure_id: str, **changes) -> dict:
    from figures_src.featvis import FIGURES
    return {**FIGURES[figure_id]["params"]["quick"], **changes}


def test_dataset_examples_of_a_resnet_use_the_deepest_conv_whose_field_fits_the_image(trained_zoo, tmp_path,
                                                                                       run_figure):
    """Trial R: on ResNet-18 at 32 px the last conv (a 435 px receptive field) made every crop a
    black square with the digit a dot in its middle; params "layer" still picks any layer."""
    params = quick_params("featvis/dataset-examples", steps=4)
    numbers = run_figure("featvis/dataset-examples", trained_zoo, tmp_path, models=["shapes-resnet18"], params=params)
    assert numbers["layer"] == "layer1.0.conv2" and numbers["receptive_field"] == [27, 27]
    named = run_figure("featvis/dataset-examples", trained_zoo, tmp_path, models=["shapes-resnet18"],
                       params={**params, "layer": "layer1.0.conv1"})
    assert named["layer"] == "layer1.0.conv1" and named["receptive_field"] == [19, 19]


def test_layer_grid_of_a_resnet_shows_its_stages_and_at_most_units_channels_of_each(trained_zoo, tmp_path,
                                                                                    run_figure):
    """Trial R: all 20 convs of ResNet-18 (4800 units) drew titles over each other and took 253 s."""
    params = quick_params("featvis/layer-grid", steps=4, units=16)
    numbers = run_figure("featvis/layer-grid", trained_zoo, tmp_path, models=["shapes-resnet18"], params=params)
    assert list(numbers["layers"]) == ["layer1", "layer2", "layer3", "layer4"]       # its feature_layers
    assert [row["channels"] for row in numbers["layers"].values()] == [64, 128, 256, 512]
    assert [row["units_shown"] for row in numbers["layers"].values()] == [16] * 4 and numbers["units_total"] == 64


def test_diversity_makes_the_images_less_alike(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("featvis/diversity", trained_zoo, tmp_path)
    assert numbers["diverse"]["mean_gram_similarity"] < numbers["plain"]["mean_gram_similarity"] - 0.1
    assert numbers["diverse"]["mean_activation"] > 0.5 * numbers["plain"]["mean_activation"]


def test_deepdream_amplifies_its_layer(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("featvis/deepdream", trained_zoo, tmp_path)
    assert numbers["objective_after"] > numbers["objective_before"] > 0
    assert numbers["amplification"] == pytest.approx(numbers["objective_after"] / numbers["objective_before"])


def test_tuning_figure_counts_the_curve_family_it_draws(trained_zoo, tmp_path, run_figure, model):
    numbers = run_figure("featvis/tuning", trained_zoo, tmp_path)
    assert numbers["curve_detectors"] == len(numbers["curve_units"]) >= 3
    assert set(map(int, numbers["preferred_degrees"])) == set(numbers["curve_units"])
    assert all(0 <= angle < 360 for angle in numbers["preferred_degrees"].values())
    layer = dict(model.named_modules())[numbers["layer"]]
    assert isinstance(layer, nn.ReLU) and numbers["curve_coverage"] >= 0.5


FEATVIS_FIGURES = ["featvis/from-noise", "featvis/regularisation", "featvis/layer-grid", "featvis/dataset-examples",
                   "featvis/diversity", "featvis/deepdream", "featvis/tuning"]


@pytest.mark.parametrize("figure_id", FEATVIS_FIGURES)
def test_featvis_figures_run_on_a_grey_nested_model(grey_cnn_zoo, tmp_path, run_figure, figure_id):
    """Pointed at a one-channel model whose feature_layers are activations (fewer than its convs),
    every figure runs on its own mnist data, and the featured unit is in the conv feeding the
    feature layer its curve family was found in (not conv_layers at that feature index)."""
    numbers = run_figure(figure_id, grey_cnn_zoo, tmp_path, models=["grey-cnn"])
    assert numbers["model"] == "grey-cnn"
    feeding = {"features.4": "features.3", "features.7": "features.6"}
    if figure_id in ("featvis/from-noise", "featvis/regularisation", "featvis/diversity"):
        assert numbers["layer"] in feeding.values() and numbers["layer"] != "features.3"


@pytest.mark.parametrize("figure_id", ["featvis/from-noise", "featvis/layer-grid", "featvis/dataset-examples",
                                       "featvis/tuning"])
def test_featvis_figures_on_an_mlp_say_they_need_conv_layers(figure_id, vector_zoo, tmp_path, run_figure):
    """A model with no conv layer gets one message per figure naming it and its layers, not an
    IndexError or the receptive field's ValueError."""
    from figures_src.runner.context import FigureInputError
    from figures_src.featvis import FIGURES
    params = {**FIGURES[figure_id]["params"]["quick"], "images": 50}
    with pytest.raises(FigureInputError, match=rf"figure '{figure_id}' needs conv layers.*'tab-mlp' lacks "
                       r"\(feature_layers: act1, act2; conv_layers: none\)"):
        run_figure(figure_id, vector_zoo, tmp_path, models=["tab-mlp"], params=params)
