"""The universality figures, run end to end (quick profile) on the trained zoo.

Checks what the slides claim from them: two seeds agree layer by layer more than across layers,
matched units beat the shuffled baseline, CKA finds the corresponding layer at least as often as
SVCCA, trained models agree more than random-weight ones, both paths between classes start and
end where they say, and every CNN has a curve-detector family.
"""
import pytest


def test_cka_maps_two_seeds_agree_layer_by_layer(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/cka-maps", trained_zoo, tmp_path)
    assert numbers["seed_diagonal_mean"] > numbers["seed_off_diagonal_mean"] + 0.2
    within = numbers["pairs"]["A vs A seed 1"]["linear_cka"]
    # the matching layer of the other seed is the most similar one, for every layer
    assert all(row.index(max(row)) == i for i, row in enumerate(within))
    resnet = numbers["pairs"]["A vs ResNet-18"]
    assert resnet["layers_b"] == ["layer1", "layer2", "layer3", "layer4", "fc"]
    best = numbers["torchvision"]["ResNet-18"]["best"]
    assert best["fc"]["layer"] == "fc" and best["fc"]["linear_cka"] == max(resnet["linear_cka"][-1])


def test_matched_units_beat_the_shuffled_baseline(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/unit-matching", trained_zoo, tmp_path)
    for layer in numbers["layers"].values():
        assert layer["matched_mean"] > layer["shuffled_mean"] + 0.1


def test_layer_correspondence_cka_at_least_as_good_as_svcca(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/layer-correspondence", trained_zoo, tmp_path)
    seeds = numbers["accuracy"]["seeds_every_module"]
    assert seeds["linear_cka"] >= seeds["svcca"]
    assert seeds["linear_cka"] >= 0.8
    # the slide: training, not the pixels alone, makes the classifiers' inputs agree
    alignment = numbers["penultimate_mutual_knn"]
    assert alignment["mean_trained"] > alignment["mean_random_weights"] + 0.05
    assert alignment["mean_trained_with_torchvision"] > alignment["mean_random_weights_with_torchvision"] + 0.05
    assert len(numbers["torchvision_pairs"]) == 4 and set(numbers["accuracy"]["with_torchvision"]) == set(seeds)


@pytest.mark.parametrize("figure_id", ["universality/interpolation", "universality/adversarial-path"])
def test_paths_between_classes_start_and_end_where_they_say(trained_zoo, tmp_path, figure_id, run_figure):
    numbers = run_figure(figure_id, trained_zoo, tmp_path)
    classes = numbers["classes_along_path"]
    assert classes[0] == numbers["start"]
    assert classes[-1] == numbers.get("end", numbers.get("target"))


def test_every_cnn_has_a_curve_detector_family(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/curve-detectors", trained_zoo, tmp_path)
    assert set(numbers["chosen"]) == {"A", "A seed 1", "Wide", "Deep"}
    for chosen in numbers["chosen"].values():
        assert chosen["curve"] >= 3 and chosen["curve_coverage"] >= 0.25


def test_matched_units_are_shown_strongest_first_at_their_receptive_field(trained_zoo, tmp_path, run_figure):
    from mechinterp.featvis.dataset_examples import receptive_field
    from mechinterp.models.zoo import load_model
    numbers = run_figure("universality/matched-units", trained_zoo, tmp_path)
    correlations = [pair["correlation"] for pair in numbers["pairs"]]
    assert correlations == sorted(correlations, reverse=True) and correlations[0] > 0.6
    model = load_model("shapes-cnn-a", trained_zoo, device="cpu")
    assert numbers["receptive_field"] == list(receptive_field(model, numbers["layer"], model.input_shape).size)


def test_first_layers_are_oriented_like_ica_filters_and_unlike_random_ones(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/first-layer-filters", trained_zoo, tmp_path)
    selectivity, random = numbers["orientation_selectivity"], numbers["random_orientation_selectivity"]
    assert selectivity["ica"] > random + 0.3 and selectivity["sparse_coding"] > random + 0.3
    # ResNet-18's stem is shown and measured, but three epochs leave it near random (the slide says so)
    assert abs(selectivity["shapes-resnet18"] - random) < 0.2
    for name, best in numbers["best_match_with_ica"].items():
        if name == "shapes-resnet18":
            continue
        assert selectivity[name] > random + 0.2, name
        assert best > numbers["random_best_match_with_ica"][name] + 0.1, name


def test_probes_climb_with_depth_above_their_controls(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/probes", trained_zoo, tmp_path)
    assert numbers["chance"] == pytest.approx(1 / 8)
    for name, layers in numbers["models"].items():
        first, last = layers[next(iter(layers))], layers["fc"]
        assert last["accuracy"] > first["accuracy"] + 0.3, name
        for layer, probe in layers.items():
            assert probe["control_accuracy"] < numbers["chance"] + 0.15, (name, layer)
        assert last["accuracy"] > last["random_weights_accuracy"] + 0.5, name
    relu3 = numbers["models"]["A"]["relu3"]
    assert relu3["accuracy"] > relu3["control_accuracy"] + 0.3
    assert relu3["control_train_accuracy"] > 0.9     # the control memorises: why held-out counts


def test_tcav_arcs_push_towards_circles_and_lines_away(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/tcav", trained_zoo, tmp_path)
    arc, line, noise = (numbers["results"][c]["relu3"] for c in ("arc", "line", "noise"))
    assert arc["mean"] > 0.7 and arc["p_value"] < 0.05
    assert line["mean"] < 0.3 and line["p_value"] < 0.05
    assert noise["cav_accuracy"] > 0.9 > arc["cav_accuracy"]     # present is not the same as used
    assert set(numbers["ig_share_along_cav"]) == set(numbers["concepts"])


def test_tsne_separates_the_classes_better_than_pca(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/embedding", trained_zoo, tmp_path)
    purity = numbers["embedding_purity"]
    assert numbers["clusters"] == 8
    assert purity["tsne"] > purity["pca"] + 0.1 and min(purity.values()) > 1 / 8


def test_depth_lowers_dimension_and_raises_purity(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("universality/geometry", trained_zoo, tmp_path)
    for name, layers in numbers["models"].items():
        first, last = layers[next(iter(layers))], layers["fc"]
        assert last["twonn"] < first["twonn"] and last["purity"] > first["purity"] + 0.3, name
        assert last["purity"] > numbers["pixel_purity"] + 0.3, name


def test_attacks_succeed_more_with_epsilon_and_hijack_features_of_the_new_class(trained_zoo, tmp_path,
                                                                                run_figure):
    numbers = run_figure("universality/adversarial", trained_zoo, tmp_path)
    for attack, rates in numbers["success"].items():
        assert rates[0] == 0.0 and rates[-1] > 0.5, attack
    for attack in ("pgd_linf", "pgd_l2"):
        rates = numbers["success"][attack]
        assert all(a <= b + 1e-9 for a, b in zip(rates, rates[1:])), attack
    reference = numbers["at_reference"]
    assert reference["pgd_linf"] >= reference["fgsm"]
    assert numbers["sae_explained_variance"] > 0.7 and numbers["flipped"] > 0
    assert numbers["top_feature_is_new_class"] > 2 * numbers["top_feature_is_new_class_chance"]


def test_single_model_figures_read_layers_and_shapes_from_the_model(renamed_cnn_zoo, tmp_path, run_figure):
    tcav = run_figure("universality/tcav", renamed_cnn_zoo, tmp_path,
                      params={"target": "circle", "examples": 20, "random_sets": 3,
                              "concepts": ["arc", "line"], "textures": ["stripes", "noise"],
                              "train_images": 1500, "test_images": 400})
    assert tcav["layers"] == ["a1", "a2", "a3"] and tcav["concepts"] == ["arc", "line", "stripes", "noise"]
    embedding = run_figure("universality/embedding", renamed_cnn_zoo, tmp_path,
                           params={"images": 200, "layer": "a3"})
    assert embedding["clusters"] == 8 and embedding["embedding_purity"]["pca"] > 1 / 8
    path = run_figure("universality/adversarial-path", renamed_cnn_zoo, tmp_path)
    assert path["classes_along_path"][0] == path["start"]


def test_filter_figures_run_on_a_grey_nested_model(grey_cnn_zoo, tmp_path, run_figure):
    """A one-channel model's 3x3 first layer is compared with grey photo patches' ICA filters and
    a one-channel random baseline; the curve search runs on the declared model."""
    numbers = run_figure("universality/first-layer-filters", grey_cnn_zoo, tmp_path,
                         params={"patches": 600, "components": 8, "shown": 8}, models=["grey-cnn"])
    assert set(numbers["best_match_with_ica"]) == {"grey-cnn"}
    assert set(numbers["orientation_selectivity"]) == {"grey-cnn", "ica", "sparse_coding"}
    curves = run_figure("universality/curve-detectors", grey_cnn_zoo, tmp_path, models=["grey-cnn"])
    assert set(curves["models"]["grey-cnn"]) == {"features.4", "features.7"}


def test_concept_figures_on_a_grey_nested_model(grey_cnn_zoo, tmp_path, run_figure):
    """The embedding reads the model's mnist data and a layer index; TCAV names the class param
    the model's data lacks."""
    from figures_src.runner.context import FigureInputError
    embedding = run_figure("universality/embedding", grey_cnn_zoo, tmp_path,
                           params={"images": 200, "layer": -1}, models=["grey-cnn"])
    assert embedding["clusters"] == 10
    with pytest.raises(FigureInputError, match=r"'target' names class 'circle'"):
        run_figure("universality/tcav", grey_cnn_zoo, tmp_path, models=["grey-cnn"])


def test_concept_figures_read_the_declared_models_and_image_counts(grey_cnn_zoo, tmp_path, run_figure):
    """Probes and geometry read every declared model (not the repo's list); TCAV's image counts
    are params, and one larger than the model's data is a message naming the figure and param."""
    from figures_src.runner.context import FigureInputError
    probes = run_figure("universality/probes", grey_cnn_zoo, tmp_path, params={"images": 150},
                        models=["grey-cnn"])
    assert set(probes["models"]) == {"grey-cnn"} and probes["chance"] == pytest.approx(1 / 10, abs=0.05)
    geometry = run_figure("universality/geometry", grey_cnn_zoo, tmp_path, params={"images": 150},
                          models=["grey-cnn"])
    assert set(geometry["models"]) == {"grey-cnn"} and geometry["clusters"] == 10
    tcav = {"target": "3", "examples": 10, "random_sets": 2, "concepts": ["1", "7"],
            "textures": ["stripes", "noise"], "train_images": 400, "test_images": 200}
    numbers = run_figure("universality/tcav", grey_cnn_zoo, tmp_path, params=tcav, models=["grey-cnn"])
    assert numbers["layers"] == ["features.4", "features.7"] and numbers["concepts"][:2] == ["1", "7"]
    with pytest.raises(FigureInputError, match=r"universality/tcav.*'train_images' asks for 99999 train"):
        run_figure("universality/tcav", grey_cnn_zoo, tmp_path, params={**tcav, "train_images": 99999},
                   models=["grey-cnn"])
    # concept sets as large as the random ones: a class with fewer examples is refused, not used short
    with pytest.raises(FigureInputError, match=r"params 'examples' asks for 60 examples of each concept, but class "
                       r"'[17]' has (\d+) among the first 400 train images: set 'examples' to at most \1, or raise"):
        run_figure("universality/tcav", grey_cnn_zoo, tmp_path, params={**tcav, "examples": 60}, models=["grey-cnn"])


def test_similarity_figures_read_the_declared_models(grey_cnn_zoo, tmp_path, run_figure):
    """cka-maps and layer-correspondence on a grey nested CNN twice (two "seeds" of one
    architecture, no torchvision model): the comparisons there are no models for are left out,
    as are their words in the title; one model is a message saying what to declare."""
    from figures_src.runner.context import FigureInputError
    from figures_src.universality_similarity import cka_title
    cka = run_figure("universality/cka-maps", grey_cnn_zoo, tmp_path, params={"images": 100},
                     models=["grey-cnn", "grey-cnn"])
    assert set(cka["pairs"]) == {"grey-cnn vs grey-cnn"} and "torchvision" not in cka
    assert cka["seed_diagonal_mean"] == pytest.approx(1.0, abs=1e-4)
    assert cka_title(["grey-cnn", "grey-cnn"], ["grey-cnn", "grey-cnn"], []) == "two seeds"
    assert cka_title(["a", "b"], None, ["resnet"]) == "other architectures, then torchvision's resnet"
    layers = run_figure("universality/layer-correspondence", grey_cnn_zoo, tmp_path, params={"images": 100},
                        models=["grey-cnn", "grey-cnn"])
    assert set(layers["accuracy"]) == {"seeds_every_module"}
    assert layers["accuracy"]["seeds_every_module"]["linear_cka"] == pytest.approx(1.0)
    assert layers["torchvision_pairs"] == [] and layers["cross_pairs"] == []
    with pytest.raises(FigureInputError, match=r"declares 1: list at least 2 in \"models\""):
        run_figure("universality/cka-maps", grey_cnn_zoo, tmp_path, params={"images": 100}, models=["grey-cnn"])


def test_unit_matching_reads_the_declared_models_and_the_layer_index(grey_cnn_zoo, tmp_path, run_figure):
    """Pointed at a grey nested CNN twice (a model against itself), the matching figures read the
    declared models and a feature_layers index: every unit matches itself, correlation 1."""
    matched = run_figure("universality/matched-units", grey_cnn_zoo, tmp_path, models=["grey-cnn", "grey-cnn"],
                         params={"images": 120, "layer": -1, "pairs": 2, "examples": 3, "top": 5})
    assert matched["layer"] == "features.7" and matched["images"] == 120
    assert all(pair["unit_a"] == pair["unit_b"] and pair["correlation"] > 0.999 for pair in matched["pairs"])
    histogram = run_figure("universality/unit-matching", grey_cnn_zoo, tmp_path, models=["grey-cnn", "grey-cnn"],
                           params={"images": 120})
    assert set(histogram["layers"]) == {"features.4", "features.7"}
    assert all(layer["matched_mean"] > 0.999 for layer in histogram["layers"].values())


def test_class_paths_on_a_grey_model_read_their_class_params(grey_cnn_zoo, tmp_path, run_figure):
    """Pointed at mnist digits, the default shapes classes name the param to change (no engine
    ValueError), and digit classes walk from one to the other."""
    from figures_src.runner.context import FigureInputError
    with pytest.raises(FigureInputError, match=r"'universality/adversarial-path': params 'start' names "
                                               r"class 'line'.*its classes: 0, 1"):
        run_figure("universality/adversarial-path", grey_cnn_zoo, tmp_path, models=["grey-cnn"])
    path = run_figure("universality/adversarial-path", grey_cnn_zoo, tmp_path, models=["grey-cnn"],
                      params={"images": 100, "start": "1", "target": "7", "epsilon": 6.0, "steps": 12,
                              "shown": 4})
    assert path["classes_along_path"][0] == "1" and path["target"] == "7"
    line = run_figure("universality/interpolation", grey_cnn_zoo, tmp_path, models=["grey-cnn"],
                      params={"images": 100, "start": "1", "end": "0", "steps": 5, "dense_steps": 11,
                              "layer": -1})
    assert line["classes_along_path"][0] == "1" and line["classes_along_path"][-1] == "0"


def test_adversarial_counts_are_params_checked_before_the_attacks(grey_cnn_zoo, tmp_path, run_figure):
    from figures_src.runner.context import FigureInputError
    from figures_src.universality_adversarial import FIGURES
    params = {**FIGURES["universality/adversarial"]["params"]["quick"], "images": 40, "reference_images": 5000}
    with pytest.raises(FigureInputError, match=r"'universality/adversarial': params 'reference_images' "
                                               r"asks for 5000 train images.* at most 4000"):
        run_figure("universality/adversarial", grey_cnn_zoo, tmp_path, models=["grey-cnn"], params=params)


def test_matched_units_on_an_mlp_says_its_layers_have_no_image_positions(vector_zoo, tmp_path, run_figure):
    """An MLP's layer runs but has no (N, C, H, W) output to crop examples at: one message naming
    the figure, the model's layers and that, not "did not run in the forward pass"."""
    from figures_src.runner.context import FigureInputError
    with pytest.raises(FigureInputError, match=r"^figure 'universality/matched-units' needs a layer with image "
                       r"positions to crop its dataset examples at, which layer 'act1' of model 'tab-mlp' lacks \(its "
                       r"output has shape \(1, 16\); feature_layers: act1, act2; conv_layers: none\): declare a model "
                       r"that has such a layer in \"models\" in FIGURES\['universality/matched-units'\] in \S+$"):
        run_figure("universality/matched-units", vector_zoo, tmp_path, models=["tab-mlp", "tab-mlp"],
                   params={"images": 60, "layer": 0, "pairs": 2, "examples": 3, "top": 5})


@pytest.fixture(scope="module")
def vector_input_zoo(vector_zoo, tmp_path_factory):
    """vector_zoo's MLP as a model of 64-feature vectors ("tab-vector"): its weights, its entry's
    input_shape [64], as a tabular model declares it (it flattens the digits it is given)."""
    import json
    import shutil
    models = tmp_path_factory.mktemp("vector-input") / "models"
    shutil.copytree(vector_zoo / "tab-mlp", models / "tab-vector")
    meta = json.loads((models / "tab-vector" / "meta.json").read_text())
    meta["config"]["input_shape"] = [64]
    (models / "tab-vector" / "meta.json").write_text(json.dumps(meta))
    return models


def test_concept_figures_word_an_mlps_inputs_and_layers_from_the_model(vector_zoo, vector_input_zoo, tmp_path,
                                                                      run_figure):
    """"channel maxima" only for a conv map, "pixels" only for an image model's inputs (a vector
    model's are "inputs"), and TCAV's image textures refused for a vector model, saying what to set."""
    from figures_src.runner.context import FigureInputError
    embedding = run_figure("universality/embedding", vector_zoo, tmp_path, models=["tab-mlp"],
                           params={"images": 120, "layer": "act2"})
    assert embedding["read"] == "activations"
    for figure_id in ("universality/probes", "universality/geometry"):
        assert run_figure(figure_id, vector_zoo, tmp_path, models=["tab-mlp"], params={"images": 120})["inputs"] == "pixels"
        assert run_figure(figure_id, vector_input_zoo, tmp_path, models=["tab-vector"],
                          params={"images": 120})["inputs"] == "inputs"
    tcav = {"target": "3", "examples": 10, "random_sets": 2, "concepts": ["1", "7"],
            "textures": ["stripes", "noise"], "train_images": 400, "test_images": 200}
    with pytest.raises(FigureInputError, match=r"'universality/tcav': params 'textures' asks for stripes, noise, "
                       r"image textures.*model 'tab-vector' takes inputs of shape \(64,\): set 'textures' to \[\]"):
        run_figure("universality/tcav", vector_input_zoo, tmp_path, models=["tab-vector"], params=tcav)
    numbers = run_figure("universality/tcav", vector_input_zoo, tmp_path, models=["tab-vector"],
                         params={**tcav, "textures": []})
    assert numbers["concepts"] == ["1", "7"] and numbers["layers"] == ["act1", "act2"]


def test_attack_and_path_figures_on_standardised_tabular_features(vector_zoo, tmp_path, run_figure):
    """Trial S: on a tabular MLP every attack clamped standardised features to [0, 1] (its curve
    measured the clamp), and the two path figures failed in numpy drawing vectors as images."""
    from mechinterp.data import load_dataset
    test = load_dataset("wine", "test")
    attack = {"images": 40, "sae_images": 100, "sae_steps": 20, "steps": 3, "linf": [0, 0.001, 0.3],
              "l2": [0, 0.5], "hijack_epsilon": 0.3, "reference_linf": 0.3, "reference_l2": 0.5,
              "reference_images": 100}
    numbers = run_figure("universality/adversarial", vector_zoo, tmp_path, models=["wine-mlp"], params=attack)
    assert numbers["input_bounds"] == [float(test.images[:40].min()), float(test.images[:40].max())]
    assert numbers["success"]["fgsm"][:2] == [0.0, 0.0] and numbers["success"]["pgd_linf"][2] > 0
    interpolation = run_figure("universality/interpolation", vector_zoo, tmp_path, models=["wine-mlp"],
                               params={"images": 40, "start": "class_0", "end": "class_2", "steps": 5,
                                       "dense_steps": 21, "layer": "act2"})
    assert interpolation["classes_along_path"][0] == "class_0" and interpolation["classes_along_path"][-1] == "class_2"
    path = run_figure("universality/adversarial-path", vector_zoo, tmp_path, models=["wine-mlp"],
                      params={"images": 40, "start": "class_0", "target": "class_1", "epsilon": 3.0,
                              "steps": 20, "shown": 5})
    assert path["classes_along_path"][0] == "class_0" and path["final_target_probability"] > 0.5
    from figures_src.runner.context import FigureInputError
    with pytest.raises(FigureInputError, match=r"params 'images' asks for 999 test examples, but the data of "
                       r"model 'wine-mlp' has 45: set 'images'"):                    # not "images"
        run_figure("universality/interpolation", vector_zoo, tmp_path, models=["wine-mlp"],
                   params={"images": 999, "start": "class_0", "end": "class_2", "steps": 5, "dense_steps": 21,
                           "layer": "act2"})
