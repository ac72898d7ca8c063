"""Real handwritten digits as scikit-learn ships them (load_digits: 1,797 images, 8x8 grey).

    from mechinterp.data.digits import load_digits_split
    images, labels = load_digits_split("train")   # float32 (N, 1, 8, 8) in [0, 1], int64 (N,)

The split is fixed (stratified, 25% held out, random_state 0), so the zoo's digits-mlp always sees
the same training and test images. (The workshop deck uses 28x28 MNIST: "mnist" in data/files.py.)
"""
from __future__ import annotations

import numpy as np

TEST_FRACTION = 0.25
CLASS_NAMES = [str(digit) for digit in range(10)]


def load_digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The train or test part of load_digits, pixels scaled from 0..16 to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    train_x, test_x, train_y, test_y = train_test_split(
        images, digits.target.astype(np.int64), test_size=TEST_FRACTION, random_state=0,
        stratify=digits.target)
    return (train_x, train_y) if split == "train" else (test_x, test_y)
