"""The speaker's own table of labelled examples, for a model of vectors: `dataset: csv:<name>`.

    from mechinterp.data.tables import load_table
    x, y, class_names, feature_names = load_table("patients", "train", root="data")

The data folder (data/, or the entry's data_root) holds either <name>.csv, of which a fixed 25%
of each class is held out (stratified, random_state 0, as scikit-learn's tabular sets are split),
or a folder <name>/ with train.csv and test.csv, split by you. The first row names the columns.
The class is the column called `label` (any case), else the last column; its values, as text,
are the class names, sorted (numerically when they are all numbers). Every other column is a
feature, named by its header, and holds a number: a cell that is not one is an error naming its
file, line and column. The features are standardised with the training split's mean and
standard deviation (both splits alike), as "wine" and "breast-cancer" are.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mechinterp.data.files import MissingDataError, data_root
from mechinterp.data.folders import relative_to_here

LABEL_COLUMN = "label"


def table_files(name: str, root=None) -> dict[str, Path] | Path:
    """{split: file} of a table split by its author (<data>/<name>/train.csv, test.csv), else the
    one file <data>/<name>.csv to split here; a MissingDataError saying where it looked."""
    root = data_root(root)
    folder, single = root / name, root / f"{name}.csv"
    if (folder / "train.csv").is_file() and (folder / "test.csv").is_file():
        return {"train": folder / "train.csv", "test": folder / "test.csv"}
    if single.is_file():
        return single
    raise MissingDataError(f"dataset 'csv:{name}': no {single} and no {folder}/train.csv with test.csv"
                     f"{relative_to_here(root)}: put your table there (the first row names the columns; "
                     f"the class is the column `{LABEL_COLUMN}`, else the last)")


def read_rows(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(feature names, label text per row, float64 (rows, features)) of one CSV file."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise ValueError(f"dataset csv: {path}: needs a header row and at least one row of data")
    header = [cell.strip() for cell in rows[0]]
    lowered = [cell.lower() for cell in header]
    label = lowered.index(LABEL_COLUMN) if LABEL_COLUMN in lowered else len(header) - 1
    features = [i for i in range(len(header)) if i != label]
    values = np.empty((len(rows) - 1, len(features)))
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"dataset csv: {path}:{line}: {len(row)} cells where the header has {len(header)}")
        for column, index in enumerate(features):
            try:
                values[line - 2, column] = float(row[index])
            except ValueError:
                raise ValueError(f"dataset csv: {path}:{line}: column {header[index]!r} holds {row[index]!r}, "
                                 "not a number: features must be numbers (encode a category as numbers, or "
                                 f"make it the class column `{LABEL_COLUMN}`)") from None
    return [header[i] for i in features], [row[label].strip() for row in rows[1:]], values


def class_order(labels: list[str]) -> list[str]:
    """The distinct labels, sorted as numbers when they all are ("2" before "10"), else as text."""
    distinct = sorted(set(labels))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def label_indices(labels: list[str], classes: list[str]) -> np.ndarray:
    return np.array([classes.index(label) for label in labels], dtype=np.int64)


def load_table(name: str, split: str, root) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(float32 (N, D) standardised features, int64 (N,) labels, class names, feature names)."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from mechinterp.data.digits import TEST_FRACTION
    files = table_files(name, root)
    if isinstance(files, Path):
        names, labels, values = read_rows(files)
        classes = class_order(labels)
        y = label_indices(labels, classes)
        try:
            train_x, test_x, train_y, test_y = train_test_split(values, y, test_size=TEST_FRACTION,
                                                                random_state=0, stratify=y)
        except ValueError as error:       # a class of one row cannot be split
            raise ValueError(f"dataset 'csv:{name}': {files}: {error}; give each class at least 2 rows, "
                             f"or split it yourself into {files.with_suffix('')}/train.csv and test.csv") from None
    else:
        (names, train_labels, train_x), (test_names, test_labels, test_x) = map(read_rows, files.values())
        if test_names != names:
            raise ValueError(f"dataset 'csv:{name}': {files['test']} has the columns {test_names}, "
                             f"{files['train']} {names}: give both the same features")
        classes = class_order(train_labels + test_labels)
        train_y, test_y = label_indices(train_labels, classes), label_indices(test_labels, classes)
    scaler = StandardScaler().fit(train_x)
    x, y = (train_x, train_y) if split == "train" else (test_x, test_y)
    return scaler.transform(x).astype(np.float32), y, classes, names
