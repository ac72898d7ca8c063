"""A speaker's own table (`dataset: csv:<name>`): read with its column names, split, standardised
by the training split, each bad cell named at its line, and trained on by the zoo like any dataset."""
import csv

import numpy as np
import pytest

from mechinterp.data import load_dataset

HEADER = ["age", "blood pressure", "label", "dose"]


def write_table(path, rows, header=HEADER):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def patients(count=40, seed=0):
    rng = np.random.default_rng(seed)
    return [[round(rng.normal(50, 10), 1), round(rng.normal(120, 15), 1), ["healthy", "sick"][i % 2],
             round(rng.uniform(0, 5), 2)] for i in range(count)]


def test_one_table_is_split_stratified_and_standardised_by_its_training_split(tmp_path):
    write_table(tmp_path / "patients.csv", patients(40))
    train = load_dataset("csv:patients", "train", root=tmp_path)
    test = load_dataset("csv:patients", "test", root=tmp_path)
    assert train.feature_names == ["age", "blood pressure", "dose"]     # the label column wherever it is
    assert train.class_names == ["healthy", "sick"] and (len(train), len(test)) == (30, 10)
    assert train.labels.bincount().tolist() == [15, 15] and test.labels.bincount().tolist() == [5, 5]
    assert train.images.shape == (30, 3) and train.images.dtype.is_floating_point
    assert np.allclose(train.images.mean(0).numpy(), 0, atol=1e-5)
    assert np.allclose(train.images.numpy().std(0), 1, atol=1e-5)          # population std, as StandardScaler
    raw = np.array([[row[0], row[1], row[3]] for row in patients(40)])
    standardised = np.concatenate([train.images.numpy(), test.images.numpy()])
    # the same affine map for both splits: each column's standardised values are a + b * raw values
    for column in range(3):
        slope, intercept = np.polyfit(np.sort(raw[:, column]), np.sort(standardised[:, column]), 1)
        assert np.allclose(np.sort(standardised[:, column]), slope * np.sort(raw[:, column]) + intercept, atol=1e-4)
    assert load_dataset("csv:patients", "test", root=tmp_path, count=4).feature_names == train.feature_names


def test_a_table_split_by_its_author_and_classes_in_number_order(tmp_path):
    rows = [[1.0, 2.0, label, 3.0] for label in ("2", "10", "1", "2", "10", "1")]
    write_table(tmp_path / "runs" / "train.csv", rows)
    write_table(tmp_path / "runs" / "test.csv", rows[:3])
    train, test = (load_dataset("csv:runs", split, root=tmp_path) for split in ("train", "test"))
    assert train.class_names == ["1", "2", "10"] and test.labels.tolist() == [1, 2, 0]
    assert (len(train), len(test)) == (6, 3)
    from mechinterp.models.inputs import data_files          # what the zoo watches to retrain
    assert list(data_files({"dataset": "csv:runs", "data_root": str(tmp_path)})) == ["runs/train.csv", "runs/test.csv"]
    write_table(tmp_path / "runs" / "test.csv", rows[:3], header=["age", "pressure", "label", "dose"])
    with pytest.raises(ValueError, match=r"runs/test.csv has the columns \['age', 'pressure', 'dose'\]"):
        load_dataset("csv:runs", "test", root=tmp_path)


def test_a_bad_cell_or_a_missing_table_is_one_message_naming_where(tmp_path):
    rows = patients(10)
    rows[3][1] = "n/a"
    write_table(tmp_path / "patients.csv", rows)
    with pytest.raises(ValueError, match=r"patients.csv:5: column 'blood pressure' holds 'n/a', not a number"):
        load_dataset("csv:patients", "train", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"dataset 'csv:patient': no .*/patient.csv and no "
                                                r".*/patient/train.csv with test.csv"):
        load_dataset("csv:patient", "train", root=tmp_path)
    write_table(tmp_path / "lonely.csv", [[1, 2, "a", 3], [1, 2, "a", 3], [1, 2, "b", 3]])
    with pytest.raises(ValueError, match=r"give each class at least 2 rows, or split it yourself"):
        load_dataset("csv:lonely", "train", root=tmp_path)


def test_the_zoo_trains_on_a_table_and_retrains_when_it_changes(tmp_path, monkeypatch):
    from mechinterp.models.config import read_zoo
    from mechinterp.models.inputs import model_stale_reason
    from mechinterp.models.zoo import load_meta, train_zoo
    write_table(tmp_path / "data" / "patients.csv", patients(80))
    config = tmp_path / "models" / "zoo.yaml"
    config.parent.mkdir()
    config.write_text(f"""models:
  patient-mlp:
    architecture: "tests.vector_models:TabMLP"
    kwargs: {{n_in: 3, hidden: 8, classes: 2}}
    dataset: csv:patients
    data_root: {tmp_path / "data"}
    input_shape: [3]
    feature_layers: [act1, act2]
    classifier_layer: head
    epochs: 2
""")
    train_zoo(config, config.parent, device="cpu")
    assert load_meta("patient-mlp", config.parent)["metrics"]["test_accuracy"] >= 0
    assert model_stale_reason("patient-mlp", read_zoo(config), config.parent) is None
    write_table(tmp_path / "data" / "patients.csv", patients(84))
    assert model_stale_reason("patient-mlp", read_zoo(config), config.parent) == \
        "dataset changed: patients.csv changed"
