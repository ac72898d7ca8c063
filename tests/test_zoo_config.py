"""zoo.yaml mistakes a person can act on: a wrong dataset, a badly typed, unknown or repeated
field, a model defined twice or not a mapping, a layer the model lacks, an input_shape it refuses.
Each is the problem of its entry alone, named with the zoo.yaml line of the field and what to
do, with a near name where there is one; the other models still build and their figures run."""
from __future__ import annotations

import textwrap

import pytest

from mechinterp.models.config import ZooError, ZooFileError, read_zoo
from mechinterp.models.zoo import build_models
from tests.test_zoo import REPO, documented_example
from tests.test_zoo_inputs import listed, made, run_figures, user_project

GOOD = "  mlp: {architecture: MLP, kwargs: {hidden: 8}, dataset: digits, epochs: 1, learning_rate: 0.01}\n"
OWN = textwrap.dedent('''\
      my-net:                   # the speaker's own CNN
        architecture: "my_nets.tiny:Tiny"
        kwargs: {width: 4}
        checkpoint: ../my_weights/tiny.pt
        dataset: shapes
        dataset_options: {count: 64, seed: 0}
        input_shape: [3, 32, 32]
        feature_layers: [features.0]
        classifier_layer: head
''')


def zoo_file(folder, own: str, *, extra: str = "", top: str = "") -> tuple:
    """models/zoo.yaml with a good MLP and the speaker's entry `own`; (path, its text)."""
    text = f"{top}models:\n{GOOD}\n{textwrap.indent(own, '  ')}{extra}"
    (folder / "models").mkdir(exist_ok=True)
    path = folder / "models" / "zoo.yaml"
    path.write_text(text)
    return path, text


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line of text containing fragment."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return lines[occurrence - 1]


def problem_of(path, name: str = "my-net") -> str:
    zoo = read_zoo(path)
    assert "mlp" not in zoo.problems                     # the other entry is untouched
    return zoo.problems[name]


@pytest.mark.parametrize("old, new, field, words", [
    ("dataset: shapes", "dataset: mnist5k", "dataset", "did you mean mnist-5k"),
    ("kwargs: {width: 4}", "kwargs: [8, 10]", "kwargs", "kwargs must be a mapping"),
    ("input_shape: [3, 32, 32]", "input_shape: 28", "input_shape", "input_shape must be a list [C, H, W]"),
    ("feature_layers: [features.0]", "feature_layers: features.0", "feature_layers", "must be a list of module names"),
    ("dataset: shapes", "dataset: shapes\n  learning_rate: 1e-3", "learning_rate", "write 3.0e-3"),
    ("dataset: shapes", "dataset: shapes\n  profiles: [fulll]", "profiles", "did you mean full"),
    ("dataset: shapes", "dataset: shapes\n  resize_dataset: 1", "resize_dataset", "must be true or false"),
    ("input_shape: [3, 32, 32]", "resize_dataset: true", "resize_dataset",
     "resize_dataset needs input_shape in the entry"),
])
def test_a_wrong_value_names_its_field_and_line_and_the_other_models_build(tmp_path, old, new, field, words):
    path, text = zoo_file(tmp_path, OWN.replace(old, new))
    problem = problem_of(path)
    assert f"{path}:{line_of(text, f'  {field}:')}: {field}" in problem, problem
    assert words in problem and "Traceback" not in problem


@pytest.mark.parametrize("misspelt, meant", [("feature_layers", "feature_layer"), ("checkpoint", "chekpoint")])
def test_an_unknown_field_is_named_with_the_nearest_known_one(tmp_path, misspelt, meant):
    path, text = zoo_file(tmp_path, OWN.replace(f"{misspelt}:", f"{meant}:"))
    problem = problem_of(path)
    assert f":{line_of(text, meant)}: '{meant}' is not a field of a zoo entry (did you mean {misspelt}" in problem
    assert "lacks" not in problem          # not "lacks epochs": the misspelt field is the news


def test_a_model_or_a_field_given_twice_names_both_lines(tmp_path):
    second = OWN.replace("kwargs: {width: 4}", "kwargs: {width: 6}")
    path, text = zoo_file(tmp_path, OWN, extra=textwrap.indent(second, "  "))
    problem = problem_of(path)
    assert "defined twice" in problem and f"zoo.yaml:{line_of(text, 'my-net:')} and " in problem
    assert f"zoo.yaml:{line_of(text, 'my-net:', 2)}: rename one" in problem
    path, text = zoo_file(tmp_path, OWN + "  dataset: digits\n")
    assert (f"zoo.yaml:{line_of(text, 'dataset: digits', 2)}: 'dataset' is given twice in this entry "
            f"(first at line {line_of(text, 'dataset: shapes')})") in problem_of(path)


def test_an_entry_that_is_not_a_mapping_is_its_own_problem(tmp_path):
    path, text = zoo_file(tmp_path, OWN, extra="  my-other: oops\n")
    zoo = read_zoo(path)
    assert set(zoo.problems) == {"my-other"}
    assert f"zoo.yaml:{line_of(text, 'my-other')}: model 'my-other' must be a mapping" in zoo.problems["my-other"]


def test_mistakes_outside_the_entries_are_one_error_naming_the_line(tmp_path):
    path, text = zoo_file(tmp_path, OWN, top="default: {seed: 0}\n")
    with pytest.raises(ZooError, match=r"zoo.yaml:1: 'default' is not a section .*did you mean defaults"):
        read_zoo(path)
    path, text = zoo_file(tmp_path, OWN, extra="models:\n" + GOOD)
    with pytest.raises(ZooError, match=rf"zoo.yaml:{line_of(text, 'models:', 2)}: 'models' is given twice"):
        read_zoo(path)
    path, text = zoo_file(tmp_path, OWN, top="defaults: [seed]\n")
    with pytest.raises(ZooFileError, match=r"zoo.yaml:1:1: defaults must be a mapping") as whole:
        read_zoo(path)
    assert whole.value.where[1:] == (1, 1)
    path.write_text(text.replace("models:", "models:\n  bad: [1,\n"))    # what make check reports at its line
    with pytest.raises(ZooFileError, match=r"zoo.yaml:\d+:\d+: not valid YAML: ") as invalid:
        read_zoo(path)
    assert invalid.value.where[1] > 1


def test_the_repository_zoo_and_its_documented_examples_are_clean(tmp_path):
    assert read_zoo(REPO / "models" / "zoo.yaml").problems == {}
    for name in ("my-tiny", "my-resnet"):
        (tmp_path / "zoo.yaml").write_text("models:\n" + documented_example(name) + "\n")
        assert read_zoo(tmp_path / "zoo.yaml").problems == {}, name


@pytest.mark.parametrize("old, new, field, words", [
    ("feature_layers: [features.0]", "feature_layers: [features.5]", "feature_layers",
     "Tiny has no layer 'features.5'. Did you mean 'features.1', 'features.0'"),
    ("input_shape: [3, 32, 32]", "input_shape: [1, 32, 32]", "input_shape",
     "input_shape [1, 32, 32] does not fit Tiny: a zero image of that shape fails"),
])
def test_layers_and_input_shape_are_checked_on_the_built_model(tmp_path, monkeypatch, old, new, field, words):
    user_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path, text = zoo_file(tmp_path, OWN.replace(old, new))
    metas, failures = build_models(path, tmp_path / "models", ["mlp", "my-net"], device="cpu")
    assert set(metas) == {"mlp"} and set(failures) == {"my-net"}
    block = failures["my-net"]
    assert block.startswith(f"zoo: cannot build 'my-net' (models/zoo.yaml:{line_of(text, 'my-net:')})\n"), block
    assert f"\n  models/zoo.yaml:{line_of(text, f'{field}:')}: " in block and words in block, block
    assert len(block.splitlines()) == 2 and "Traceback" not in block


SHAPES_DATA = "dataset: shapes\n  dataset_options: {count: 64, seed: 0}\n"


@pytest.mark.parametrize("new, words", [
    ("dataset: digits\n  input_shape: [3, 32, 32]\n", "dataset 'digits' gives 1x8x8 images, but the model takes 3x32x32 (input_shape): "
     "name a dataset of 3x32x32 images (shapes, cifar10), or add resize_dataset: true to resize the digits "
     "images to it"),
    ("dataset: digits\n  input_shape: [3, 16, 16]\n", "the model takes 3x16x16 (input_shape): name a "
     "dataset of 3x16x16 images (torchvision:<Dataset>)"),
])
def test_a_dataset_the_model_does_not_take_is_the_entrys_problem_before_anything_runs(tmp_path, monkeypatch,
                                                                                   new, words):
    """Not a conv's "expected input[450, 1, 8, 8] to have 3 channels" blamed on the engine."""
    user_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    own = OWN.replace(SHAPES_DATA + "  input_shape: [3, 32, 32]\n", new)
    path, text = zoo_file(tmp_path, own)
    metas, failures = build_models(path, tmp_path / "models", ["mlp", "my-net"], device="cpu")
    assert set(metas) == {"mlp"} and set(failures) == {"my-net"}
    block = failures["my-net"]
    assert f"\n  models/zoo.yaml:{line_of(text, '  dataset: digits')}: dataset 'digits' " in block and words in block
    assert "training.py" not in block and len(block.splitlines()) == 2


def test_without_an_input_shape_a_dataset_the_forward_refuses_names_both(tmp_path, monkeypatch):
    user_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path, text = zoo_file(tmp_path, OWN.replace(SHAPES_DATA + "  input_shape: [3, 32, 32]\n", "dataset: digits\n"))
    block = build_models(path, tmp_path / "models", ["my-net"], device="cpu")[1]["my-net"]
    assert (f"models/zoo.yaml:{line_of(text, '  dataset: digits')}: dataset 'digits' gives 1x8x8 images, but "
            "Tiny's forward refuses them (RuntimeError: ") in block
    assert "set input_shape to the [C, H, W] the model takes and add resize_dataset: true" in block


def test_a_built_in_architecture_trains_on_nothing_it_does_not_take(tmp_path):
    from tests.test_zoo import TINY_CNN, write_config
    config = write_config(tmp_path, {"cnn": {**TINY_CNN, "dataset": "digits", "dataset_options": None}})
    block = build_models(config, tmp_path / "models", device="cpu")[1]["cnn"]
    assert ("dataset 'digits' gives 1x8x8 images, but the model takes 3x32x32 (SmallCNN's own input_shape): "
            "name a dataset of 3x32x32 images (shapes, cifar10), or add input_shape: [3, 32, 32] and "
            "resize_dataset: true") in block
    assert not (tmp_path / "models" / "cnn").exists()


def test_resizing_to_channels_the_dataset_cannot_give_names_the_field(tmp_path):
    from tests.test_zoo import TINY_MLP, write_config
    two = {**TINY_MLP, "kwargs": {"hidden": 4, "input_shape": [2, 4, 4]}, "dataset": "shapes",
           "dataset_options": {"count": 16}, "input_shape": [2, 4, 4], "resize_dataset": True}
    block = build_models(write_config(tmp_path, {"two": two}), tmp_path / "models", device="cpu")[1]["two"]
    assert ("resize_dataset: the shapes images have 3 channels, which cannot become 2 (one channel is "
            "repeated to any number, any number averaged to one); name a dataset of 1 or 2 channels") in block


def test_a_grey_dataset_resized_to_the_models_input_is_measured(tmp_path, monkeypatch):
    """The speaker's 3x32x32 model on the 1x8x8 digits: resize_dataset: true."""
    user_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path, _ = zoo_file(tmp_path, OWN.replace(SHAPES_DATA, "dataset: digits\n  resize_dataset: true\n"))
    meta = build_models(path, tmp_path / "models", ["my-net"], device="cpu")[0]["my-net"]
    assert meta["metrics"]["test_images"] == 450 and 0 <= meta["metrics"]["test_accuracy"] <= 1
    assert meta["class_names"] == [str(digit) for digit in range(10)]


def test_figures_of_a_wrongly_named_dataset_fail_with_its_line_and_the_others_list_and_run(tmp_path):
    user_project(tmp_path)
    path, text = zoo_file(tmp_path, OWN.replace("dataset: shapes", "dataset: mnist5k"), extra="  my-other: oops\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "mine.py").write_text(textwrap.dedent('''
        FIGURES = {"own/head": {"make": "make_head", "models": ["my-net"], "outputs": []},
                   "other/mlp": {"make": "make_mlp", "models": ["mlp"], "outputs": []}}

        def make_head(ctx):
            return {"norm": float(ctx.model("my-net").head.weight.norm())}

        def make_mlp(ctx):
            return {"accuracy": ctx.model_meta("mlp")["metrics"]["test_accuracy"]}
    '''))
    problem = f"zoo.yaml:{line_of(text, 'mnist5k')}: dataset 'mnist5k' is not one of"
    listing = run_figures(tmp_path, "--list")
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
    assert set(listed(listing)) == {"other/mlp"}
    assert "cannot own/head: zoo: cannot build 'my-net'" in listing.stdout and problem in listing.stdout
    assert "read by no figure of this run: cannot build 'my-other'" in listing.stderr
    result = run_figures(tmp_path)
    assert result.returncode == 1 and made(result) == {"other/mlp"}
    assert result.stderr.count("zoo: cannot build 'my-net'") == 1 and problem in result.stderr  # once
    assert "cannot own/head: its model 'my-net' could not be built" in result.stderr
    assert "failed (see above): own/head" in result.stderr
    assert "Traceback" not in result.stderr and "did you mean mnist-5k" in result.stderr


def test_every_field_the_code_reads_is_a_known_field():
    """A field added to training or the layer descriptions must be added to fields.py too, or
    every entry using it would be refused as unknown."""
    from mechinterp.models.describe import LAYER_DESCRIPTIONS
    from mechinterp.models.fields import FIELDS
    from mechinterp.models.zoo import TRAINING_KEYS
    from mechinterp.transformers.training import ZOO_TRAINING_KEYS
    assert set(TRAINING_KEYS) | set(ZOO_TRAINING_KEYS) | set(LAYER_DESCRIPTIONS) <= set(FIELDS)


TRANSFORMER = textwrap.dedent('''\
      my-attn:                  # the built-in attention-only transformer, trained by the zoo
        architecture: "mechinterp.transformers.model:AttentionOnlyTransformer"
        kwargs: {d_vocab: 32, n_ctx: 24, d_model: 48, n_heads: 3, n_layers: 2}
        trainer: "mechinterp.transformers.training:train_zoo_entry"
        steps: 10
''')


@pytest.mark.parametrize("sizes, words", [
    ("n_heads: 0", "kwargs: n_heads must be a whole number >= 1; it is 0"),
    ("n_heads: 5", "kwargs: n_heads must divide d_model (48 / 5 is not whole), or give d_head"),
    ("n_heads: 3, n_layers: 0", "kwargs: n_layers must be a whole number >= 1; it is 0"),
    ("n_heads: 3, n_layer: 2", "kwargs: 'n_layer' is not an argument of AttentionOnlyTransformer (did you mean n_layers?)"),
])
def test_transformer_sizes_it_cannot_be_built_with_are_refused_at_the_kwargs_line(tmp_path, sizes, words):
    path, text = zoo_file(tmp_path, TRANSFORMER.replace("n_heads: 3, n_layers: 2", sizes))
    problem = problem_of(path, "my-attn")
    assert problem.startswith(f"{path}:{line_of(text, 'kwargs:', 2)}: {words}"), problem
    assert "my-attn" not in read_zoo(zoo_file(tmp_path, TRANSFORMER)[0]).problems
