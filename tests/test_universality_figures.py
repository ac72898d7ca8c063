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
