"""The zoo figures, run end to end on the trained zoo: the first-layer filters shown are the
model's conv1 kernels, and the accuracy figure states what each model's meta.json records."""
import numpy as np

from mechinterp.models.zoo import load_meta, load_model


def test_first_layer_filters_are_the_models_first_conv(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("zoo/first-layer-filters", trained_zoo, tmp_path)
    model = load_model("shapes-cnn-a", trained_zoo, device="cpu")
    conv = dict(model.named_modules())[model.conv_layers[0]]
    assert numbers["layer"] == model.conv_layers[0] and numbers["filters"] == conv.out_channels
    assert numbers["kernel_size"] == list(conv.kernel_size)
    norms = np.linalg.norm(conv.weight.detach().numpy().reshape(conv.out_channels, -1), axis=1)
    np.testing.assert_allclose(numbers["filter_norms"], norms, atol=1e-4)


def test_accuracy_figure_quotes_each_models_recorded_accuracy(trained_zoo, tmp_path, run_figure):
    numbers = run_figure("zoo/accuracy", trained_zoo, tmp_path)
    for name, row in numbers["models"].items():
        meta = load_meta(name, trained_zoo)
        assert row["test_accuracy"] == meta["metrics"]["test_accuracy"] > 0.8, name
        assert row["dataset"] == meta["config"]["dataset"]


def test_zoo_figures_read_the_declared_model(grey_cnn_zoo, tmp_path, run_figure):
    """Pointed at a grey nested CNN, the filters are its first conv's and the accuracy figure
    lists the declared model (not the repo's list)."""
    numbers = run_figure("zoo/first-layer-filters", grey_cnn_zoo, tmp_path, models=["grey-cnn"])
    model = load_model("grey-cnn", grey_cnn_zoo, device="cpu")
    conv = dict(model.named_modules())[model.conv_layers[0]]
    assert numbers["layer"] == model.conv_layers[0] and numbers["filters"] == conv.out_channels
    accuracy = run_figure("zoo/accuracy", grey_cnn_zoo, tmp_path, models=["grey-cnn"])
    assert list(accuracy["models"]) == ["grey-cnn"]
    recorded = load_meta("grey-cnn", grey_cnn_zoo)["metrics"]["test_accuracy"]
    assert accuracy["models"]["grey-cnn"]["test_accuracy"] == recorded
