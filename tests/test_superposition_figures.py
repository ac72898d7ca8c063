"""The superposition figure functions run end to end with tiny parameters (the figure harness in
conftest: images written, numbers JSON the runner can write), checked against what the slides say:
the toy models' counts add up, the digits MLP's featured neuron is polysemantic while the SAE
features behind it are purer, and TopK SAEs keep exactly k latents, explaining more with more."""
import pytest

TINY_TRAIN = {"steps": 30, "batch_size": 64, "lr": 2e-2, "lr_schedule": "cosine", "replicas": 2}


def test_toy_model_figures(tmp_path, run_figure):
    intro = run_figure("superposition/intro-geometry", tmp_path / "models", tmp_path,
                       params={"sparsities": [0.0, 0.9], "train": TINY_TRAIN})
    assert len(intro["embedded"]) == 2 and len(intro["feature_dimensionality"][0]) == 5
    phase = run_figure("superposition/phase-diagram", tmp_path / "models", tmp_path,
                       params={"grid": 3, "train": TINY_TRAIN})
    assert phase["models_trained"] == 18 and sum(phase["phase_counts"].values()) == 9
    dims = run_figure("superposition/dims-per-feature", tmp_path / "models", tmp_path,
                      params={"n_features": 6, "n_hidden": 2, "points": 3, "max_inverse_density": 10,
                              "train": TINY_TRAIN})
    assert len(dims["dimensions_per_feature"]) == 3


def test_sae_features_are_purer_than_the_polysemantic_neuron(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("superposition/polysemantic-vs-sae", trained_zoo, tmp_path,
                         params={"layer": "relu1", "latents": 64, "l1": 0.3, "steps": 100, "top_k": 8,
                                 "shown": 4, "features": 2, "featvis_steps": 4, "featvis_l2": 5.0,
                                 "featvis_lr": 0.05, "featvis_render": "naive"})
    neuron = numbers["neuron"]
    assert numbers["polysemantic_neurons"] >= 1
    assert neuron["purity"] <= 0.5 and len(neuron["top_classes"]) >= 2     # "fires for several digits"
    for feature in numbers["features"]:
        assert feature["purity"] > neuron["purity"]
        main_class = max(feature["top_classes"], key=feature["top_classes"].get)
        assert main_class in neuron["top_classes"]        # a feature behind this neuron's digits
    assert numbers["sae_latents"]["mean_purity"] > numbers["neurons"]["mean_purity"]
    assert numbers["sae"]["clean_accuracy"] > 0.8


def test_topk_saes_keep_k_latents_and_explain_more_with_more(trained_zoo, tmp_path, run_figure):
    metrics = run_figure("superposition/sae-metrics", trained_zoo, tmp_path,
                         params={"layer": "relu1", "latents": 64, "ks": [2, 4], "l1": [0.1], "steps": 50,
                                 "quoted_k": 4})
    topk = [run for run in metrics["runs"] if run["kind"] == "topk"]
    assert [run["l0"] for run in topk] == [2.0, 4.0]
    assert topk[1]["explained_variance"] > topk[0]["explained_variance"] > 0
    assert metrics["quoted_topk"] == topk[1] and len(metrics["runs"]) == 3
    assert metrics["best_spliced_accuracy"] <= metrics["clean_accuracy"] + 0.02


def test_sae_figures_run_on_a_grey_conv_model_with_its_own_data(grey_cnn_zoo, tmp_path, run_figure):
    """Pointed at a one-channel nested CNN (mnist), the SAE figures read its own data and the layer
    its params name by feature_layers index, and train on a conv layer's position vectors in
    batches of about VECTORS_PER_BATCH vectors (one image a step here, not 128)."""
    metrics = run_figure("superposition/sae-metrics", grey_cnn_zoo, tmp_path, models=["grey-cnn"],
                         params={"layer": -1, "latents": 32, "ks": [2, 4], "l1": [0.1], "steps": 30,
                                 "quoted_k": 4})
    assert metrics["model"] == "grey-cnn" and metrics["layer"] == "features.7"
    topk = [run for run in metrics["runs"] if run["kind"] == "topk"]
    assert [run["l0"] for run in topk] == [2.0, 4.0] and topk[1]["explained_variance"] > 0
    assert metrics["clean_accuracy"] > 0.3             # its own mnist test digits (chance 0.1), not sklearn's 8x8
    poly = run_figure("superposition/polysemantic-vs-sae", grey_cnn_zoo, tmp_path, models=["grey-cnn"],
                      params={"layer": "features.4", "latents": 32, "l1": 0.3, "steps": 30, "top_k": 8,
                              "shown": 4, "features": 2, "featvis_steps": 4, "featvis_l2": 0.0, "featvis_lr": 0.05, "featvis_render": "fourier"})
    assert poly["model"] == "grey-cnn" and poly["layer"] == "features.4" and len(poly["features"]) == 2


def test_sae_directions_on_a_conv_layer_are_visible_with_the_featvis_params(grey_cnn_zoo, tmp_path, run_figure):
    """The digits MLP's L2 pull blanks a conv layer's optimised panels, and the flat warning names
    the figure and its params; without the pull and with the Fourier renderer they show."""
    import warnings
    params = {"layer": "features.4", "latents": 32, "l1": 0.3, "steps": 30, "top_k": 8, "shown": 4,
              "features": 2, "featvis_steps": 64, "featvis_l2": 5.0, "featvis_lr": 0.05, "featvis_render": "naive"}
    with pytest.warns(UserWarning, match=r"figure 'superposition/polysemantic-vs-sae'.*are flat.*featvis_l2"):
        run_figure("superposition/polysemantic-vs-sae", grey_cnn_zoo, tmp_path, models=["grey-cnn"], params=params)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*are flat")
        poly = run_figure("superposition/polysemantic-vs-sae", grey_cnn_zoo, tmp_path, models=["grey-cnn"],
                          params={**params, "featvis_l2": 0.0, "featvis_lr": 0.05, "featvis_render": "fourier"})
    assert min(poly["optimised_spread"]) > 0.05


def test_intro_geometry_draws_a_declared_toy_model_and_the_sweeps_refuse_one(vector_zoo, tmp_path, run_figure):
    """Pointed at the speaker's toy model, the intro figure draws that model's W (6 features in 2
    dimensions, two antipodal pairs) instead of training its own 5-feature models; the sweeps,
    which train many models, say they take none; a model without a toy W is told what it needs."""
    from figures_src.runner.context import FigureInputError
    numbers = run_figure("superposition/intro-geometry", vector_zoo, tmp_path, models=["toy"],
                         params={"sparsities": [0.0, 0.9], "train": TINY_TRAIN})
    assert numbers["model"] == "toy" and (numbers["n_features"], numbers["n_hidden"]) == (6, 2)
    assert numbers["embedded"] == 4 and numbers["dimensions_per_feature"] == pytest.approx(0.5)
    assert numbers["dense_overlap_of_top_two"] == pytest.approx(-1.0)        # an antipodal pair
    with pytest.raises(FigureInputError, match=r"'superposition/intro-geometry' draws model 'tab-mlp' "
                       r"as a toy model.*needs a parameter `W` of shape \(n_hidden, n_features\).*"
                       r"'tab-mlp' has no attribute `W`"):
        run_figure("superposition/intro-geometry", vector_zoo, tmp_path, models=["tab-mlp"],
                   params={"sparsities": [0.0], "train": TINY_TRAIN})
    with pytest.raises(FigureInputError, match=r"'superposition/phase-diagram' trains its own toy models "
                       r".*takes no model: remove 'toy' from \"models\""):
        run_figure("superposition/phase-diagram", vector_zoo, tmp_path, models=["toy"],
                   params={"grid": 3, "train": TINY_TRAIN})
    with pytest.raises(FigureInputError, match=r"'superposition/dims-per-feature' trains its own"):
        run_figure("superposition/dims-per-feature", vector_zoo, tmp_path, models=["toy"],
                   params={"n_features": 6, "n_hidden": 2, "points": 3, "max_inverse_density": 10,
                           "train": TINY_TRAIN})


def test_the_polysemantic_figure_on_a_model_of_vectors_says_it_draws_images_and_what_to_use(vector_zoo, tmp_path,
                                                                                          run_figure):
    """Trial S: on a tabular MLP it failed from deep in the engine ("feature visualisation of pixels
    needs an image model ...; use it on one"), naming neither the figure nor what to use."""
    from figures_src.runner.context import FigureInputError
    from figures_src.superposition import FIGURES
    params = {**FIGURES["superposition/polysemantic-vs-sae"]["params"]["quick"], "layer": "act1"}
    with pytest.raises(FigureInputError, match=r"^figure 'superposition/polysemantic-vs-sae' draws each unit's top "
                       r"test images and an optimised input beside them, so it needs a model of images; 'wine-mlp' "
                       r"takes 13-feature vectors: for a model of vectors superposition/sae-metrics gives the same "
                       r"SAE's numbers, or declare an image model in \"models\" in FIGURES\["):
        run_figure("superposition/polysemantic-vs-sae", vector_zoo, tmp_path, models=["wine-mlp"], params=params)
