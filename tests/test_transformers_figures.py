"""The transformer figures, run end to end (quick profile) on the trained zoo, and the zoo's
sequence-model entries.

Checks what the slides claim: induction heads form in the 2-layer model and not in the 1-layer
control (seeds pinned in models/zoo.yaml), with a phase change in the repeated-token loss; the
previous-token head K-composes with the induction heads far above random matrices; the induction
head copies; cutting the induction heads brings the repeated-token loss back to chance while no
head outside the circuit does; and a `profiles: [full]` entry is not trained for the quick profile.
"""
import math

import pytest

from mechinterp.models.zoo import load_meta, train_zoo
from mechinterp.transformers.snapshots import SNAPSHOTS_NAME, snapshot_models

TINY_ZOO = """models:
  tiny-2l:
    architecture: "mechinterp.transformers.model:AttentionOnlyTransformer"
    kwargs: {d_vocab: 16, n_ctx: 12, d_model: 16, n_heads: 2, n_layers: 2}
    trainer: "mechinterp.transformers.training:train_zoo_entry"
    seed: 0
    steps: 6
    batch_size: 4
    snapshot_every: 3
  tiny-2l-seed1:
    architecture: "mechinterp.transformers.model:AttentionOnlyTransformer"
    kwargs: {d_vocab: 16, n_ctx: 12, d_model: 16, n_heads: 2, n_layers: 2}
    trainer: "mechinterp.transformers.training:train_zoo_entry"
    seed: 1
    steps: 6
    profiles: [full]
"""


def test_induction_forms_in_two_layers_and_not_in_one(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("transformers/phase_change", trained_zoo, tmp_path)
    assert numbers["induction_score_2l"] > 0.5 > 0.2 > numbers["induction_score_1l"]
    assert numbers["repeated_loss_before"] > 3.0 > 1.5 > numbers["repeated_loss_after"]
    assert 0 < numbers["phase_change_step"] < numbers["curve_2l"][-1][0]
    assert numbers["repeated_loss_final_1l"] > numbers["repeated_loss_final_2l"] + 1.5
    assert numbers["icl_score_2l"] < numbers["icl_score_1l"] < 0


def test_the_circuit_figures_agree_on_the_heads(trained_zoo, tmp_path, run_figure):
    patterns = run_figure("transformers/attention_patterns", trained_zoo, tmp_path)
    assert patterns["previous_token_head"].startswith("0.") and patterns["induction_head"].startswith("1.")
    assert patterns["induction_score"] > 0.5 and patterns["previous_token_score"] > 0.3
    composition = run_figure("transformers/composition", trained_zoo, tmp_path)
    assert composition["k_composition_previous_to_induction"] == composition["k_composition_max"]
    assert composition["k_composition_max"] > composition["baseline_mean"] + 5 * composition["baseline_std"]
    circuits = run_figure("transformers/induction_circuits", trained_zoo, tmp_path)
    assert circuits["induction_head"] == patterns["induction_head"] == composition["induction_head"]
    assert circuits["copying_score"] > 0.8 and circuits["prefix_matching_score"] > 0.8
    universality = run_figure("transformers/induction_universality", trained_zoo, tmp_path)
    assert universality["seeds"] == [0] and universality["induction_scores_min"] == patterns["induction_score"]


def test_cutting_the_induction_heads_brings_the_loss_back_to_chance(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("transformers/head_ablation", trained_zoo, tmp_path)
    chance = math.log(64)
    assert numbers["chance_loss"] == chance
    assert abs(numbers["loss_induction_ablated"] - chance) < 0.5 < chance - numbers["loss_clean"]
    assert numbers["loss_other_ablated_max"] < numbers["loss_clean"] + 0.6 < chance
    assert numbers["loss_previous_token_ablated"] > numbers["loss_clean"] + 0.5
    # patching the induction heads one by one from clean into corrupted adds up to the clean answer
    assert 0.8 < numbers["patching_recovered_induction_heads"] < 1.2


def test_sequence_models_build_with_snapshots_and_profiles(tmp_path):
    (tmp_path / "zoo.yaml").write_text(TINY_ZOO)
    metas = train_zoo(tmp_path / "zoo.yaml", tmp_path / "models", device="cpu", profile="quick")
    assert list(metas) == ["tiny-2l"] and not (tmp_path / "models" / "tiny-2l-seed1").exists()
    meta = load_meta("tiny-2l", tmp_path / "models")
    assert meta["snapshot_steps"] == [0, 3, 6] and SNAPSHOTS_NAME in meta["outputs"]
    assert any("transformers/training.py" in path for path in meta["inputs"]["architecture"])
    steps = [step for step, model in snapshot_models("tiny-2l", tmp_path / "models")]
    assert steps == [0, 3, 6]
    from mechinterp.models.config import read_zoo
    from mechinterp.models.inputs import model_stale_reason
    snapshots = tmp_path / "models" / "tiny-2l" / SNAPSHOTS_NAME
    snapshots.unlink()                                  # deleted by hand: rebuilt, as a checkpoint is
    assert model_stale_reason("tiny-2l", read_zoo(tmp_path / "zoo.yaml"), tmp_path / "models") == f"{snapshots} is missing"
    train_zoo(tmp_path / "zoo.yaml", tmp_path / "models", device="cpu", profile="quick")
    assert [step for step, _ in snapshot_models("tiny-2l", tmp_path / "models")] == [0, 3, 6]


def test_a_quick_run_of_the_runner_leaves_full_only_models_untrained(tmp_path):
    """The runner builds the models the selected figures declare, but not an entry of another
    profile: a quick run of a figure declaring both seeds trains one, a gpu (full) run both."""
    from argparse import Namespace
    from figures_src.runner.discover import FigureSpec
    from figures_src.runner.planning import build_stale_models
    models = tmp_path / "models"
    models.mkdir()
    (models / "zoo.yaml").write_text(TINY_ZOO)
    spec = FigureSpec("demo/seeds", tmp_path / "demo.py", "make", ["tiny-2l", "tiny-2l-seed1"], {}, ["png"])
    options = lambda profile: Namespace(models_dir=models, profile=profile, device="cpu", cluster="", jobs=1)
    assert build_stale_models({"demo/seeds": spec}, ["demo/seeds"], options("quick")) == {}
    assert (models / "tiny-2l").is_dir() and not (models / "tiny-2l-seed1").exists()
    assert build_stale_models({"demo/seeds": spec}, ["demo/seeds"], options("gpu")) == {}
    assert (models / "tiny-2l-seed1").is_dir()


def test_make_models_builds_and_lists_sequence_models(tmp_path, capsys):
    """`make models` (the zoo's command) on a zoo of sequence models, which have no accuracy."""
    from mechinterp.models.zoo import main
    (tmp_path / "zoo.yaml").write_text(TINY_ZOO)
    assert main(["--config", str(tmp_path / "zoo.yaml"), "--models-dir", str(tmp_path / "models")]) == 0
    listed = capsys.readouterr().out
    assert "tiny-2l " in listed and "tiny-2l-seed1" in listed and "test accuracy      n/a" in listed


OWN_CLASS = '''
from types import SimpleNamespace

from mechinterp.transformers.model import AttentionOnlyTransformer

SIZES = ("d_vocab", "n_ctx", "d_model", "n_heads", "n_layers", "d_head")


class SpeakersTransformer(AttentionOnlyTransformer):
    """A speaker's own class: the engine's hook names, its sizes only in cfg (as TransformerLens
    keeps them), and no heads() method (optional)."""
    heads = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.cfg = SimpleNamespace(**{name: getattr(self, name) for name in SIZES})
        for name in SIZES:
            delattr(self, name)
'''
OWN_ZOO = """models:
  mine-2l:
    architecture: "speakers_transformer:SpeakersTransformer"
    kwargs: {d_vocab: 16, n_ctx: 16, d_model: 16, n_heads: 2, n_layers: 2}
    trainer: "mechinterp.transformers.training:train_zoo_entry"
    seed: 7
    steps: 6
    batch_size: 4
    snapshot_every: 3
  mine-1l:
    architecture: "speakers_transformer:SpeakersTransformer"
    kwargs: {d_vocab: 16, n_ctx: 16, d_model: 16, n_heads: 2, n_layers: 1}
    trainer: "mechinterp.transformers.training:train_zoo_entry"
    seed: 7
    steps: 6
    batch_size: 4
    snapshot_every: 3
"""


def test_every_transformer_figure_shows_the_model_its_entry_declares(tmp_path, run_figure, monkeypatch):
    """A speaker who points the figures at their own transformer ("models" in a copy of the script,
    as the README says) gets that model in every figure, whatever its class (no heads() method, its
    sizes in cfg only), and a 6-step model with no induction head yet still gets an ablation figure."""
    (tmp_path / "speakers_transformer.py").write_text(OWN_CLASS)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "zoo.yaml").write_text(OWN_ZOO)
    models = tmp_path / "models"
    train_zoo(tmp_path / "zoo.yaml", models, device="cpu", profile="quick")
    params = {"batch": 8, "half": 5, "data_seed": 1}
    for figure, extra in (("attention_patterns", {"shown_half": 4}), ("composition", {"baseline_samples": 10}),
                          ("induction_circuits", {}), ("head_ablation", {"method": "mean", "threshold": 0.3})):
        numbers = run_figure(f"transformers/{figure}", models, tmp_path, {**params, **extra}, models=["mine-2l"])
        assert numbers["model"] == "mine-2l", figure
    assert set(numbers["losses"]) == {"0.0", "0.1", "1.0", "1.1"}         # every head of the speaker's model
    phase = run_figure("transformers/phase_change", models, tmp_path, {**params, "window": 3},
                       models=["mine-2l", "mine-1l"])
    assert [row[0] for row in phase["curve_2l"]] == [row[0] for row in phase["curve_1l"]] == [0, 3, 6]
    seeds = run_figure("transformers/induction_universality", models, tmp_path, {**params, "seeds": 3},
                       models=["mine-2l"])
    assert seeds["seeds"] == [7]
    with pytest.raises(ValueError, match=r"param shown_half=9 makes \[r, r\] sequences of 18 tokens, longer than "
                       r"SpeakersTransformer's n_ctx of 16: set shown_half <= 8 in the params of "
                       r"transformers/attention_patterns's FIGURES entry"):
        run_figure("transformers/attention_patterns", models, tmp_path, {**params, "shown_half": 9},
                   models=["mine-2l"])


# the speaker's zoo with the engine's own class and a context of 10 tokens
SMALL_CONTEXT_ZOO = OWN_ZOO.replace("speakers_transformer:SpeakersTransformer",
                                    "mechinterp.transformers.model:AttentionOnlyTransformer").replace(
    "n_ctx: 16", "n_ctx: 10").replace("mine-", "small-")


def test_the_phase_change_figure_runs_on_a_speakers_model_of_ten_tokens(tmp_path, run_figure):
    """A context shorter than 13 tokens failed (the ICL score compared token 4 with n_ctx - 8); the
    positions now scale with the model's context, and the numbers say which they were."""
    (tmp_path / "zoo.yaml").write_text(SMALL_CONTEXT_ZOO)
    train_zoo(tmp_path / "zoo.yaml", tmp_path / "models", device="cpu", profile="quick")
    numbers = run_figure("transformers/phase_change", tmp_path / "models", tmp_path,
                         params={"batch": 8, "half": 5, "data_seed": 0, "window": 3},
                         models=["small-2l", "small-1l"])
    assert numbers["icl_positions"] == {"small-2l": [0, 8], "small-1l": [0, 8]}
    assert math.isfinite(numbers["icl_score_2l"]) and math.isfinite(numbers["icl_score_1l"])
    assert [row[0] for row in numbers["curve_2l"]] == [0, 3, 6]


def test_an_imported_transformer_has_no_snapshots_and_the_message_says_why(tmp_path):
    """A speaker's checkpoint imported into the zoo was told `make models` would add its snapshots,
    which it never does (only a trained entry saves them): a loop the night before a talk."""
    import torch
    from mechinterp.transformers.model import AttentionOnlyTransformer
    sizes = {"d_vocab": 16, "n_ctx": 12, "d_model": 16, "n_heads": 2, "n_layers": 2}
    torch.save(AttentionOnlyTransformer(**sizes).state_dict(), tmp_path / "mine.pt")
    (tmp_path / "zoo.yaml").write_text("models:\n  mine:\n    architecture: \"mechinterp.transformers.model:"
                                       f"AttentionOnlyTransformer\"\n    kwargs: {sizes}\n    checkpoint: mine.pt\n")
    train_zoo(tmp_path / "zoo.yaml", tmp_path / "models", device="cpu", profile="quick")
    with pytest.raises(FileNotFoundError) as raised:
        list(snapshot_models("mine", tmp_path / "models"))
    assert str(raised.value).startswith("model 'mine' has no training snapshots: it is imported from the checkpoint "
                                        "mine.pt, and only a zoo entry that trains its model")
    assert "make models" not in str(raised.value)
