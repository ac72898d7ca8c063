"""The speaker's own labelled images, `dataset: folder:<name>` (mechinterp/data/folders.py).

Real image files written with PIL: scikit-learn's digits as grey PNGs and scikit-image photograph
crops as RGB JPEG/PNG; the pixels read back are checked against the arrays written, and a zoo
model trains on such a folder."""
import numpy as np
import pytest
from PIL import Image

from mechinterp.data import load_dataset
from mechinterp.data.files import MissingDataError


def digit_pngs(folder, per_class=10, classes=(0, 1, 2), split_folders=False):
    """scikit-learn digits of `classes` as 8x8 grey PNGs in class folders named 'digit-<d>';
    returns {path: uint8 pixels} of what was written."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    written = {}
    for digit in classes:
        members = np.flatnonzero(digits.target == digit)[:per_class]
        for i, index in enumerate(members):
            split = ("train" if i < per_class * 0.7 else "test") if split_folders else ""
            path = folder / split / f"digit-{digit}" / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.round(digits.images[index] / 16 * 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(path)
            written[path] = pixels
    return written


def test_class_folders_with_no_split_are_read_exactly_and_split_seeded_and_stratified(tmp_path):
    written = digit_pngs(tmp_path / "mydigits")
    train = load_dataset("folder:mydigits", "train", root=tmp_path)
    test = load_dataset("folder:mydigits", "test", root=tmp_path)
    assert train.class_names == ["digit-0", "digit-1", "digit-2"]
    assert train.images.shape == (24, 1, 8, 8) and test.images.shape == (6, 1, 8, 8)
    assert np.bincount(test.labels.numpy()).tolist() == [2, 2, 2]        # 20% of each class
    expected = {bytes(p.tobytes()) for p in written.values()}
    read = {bytes(np.round(image[0] * 255).astype(np.uint8).tobytes())
            for image in np.concatenate([train.images.numpy(), test.images.numpy()])}
    assert read == expected                                                # every file, once, exact
    again = load_dataset("folder:mydigits", "test", root=tmp_path)
    assert np.array_equal(again.images, test.images)                       # the same split every time


def test_train_and_test_folders_are_the_speakers_split_and_labels_follow_the_folders(tmp_path):
    written = digit_pngs(tmp_path / "split", split_folders=True)
    test = load_dataset("folder:split", "test", root=tmp_path)
    # in the order the classes take turns: each class's first file, then each class's second, ...
    test_files = sorted(((p, pixels) for p, pixels in written.items() if p.parts[-3] == "test"),
                        key=lambda item: (sorted(q for q in written if q.parent == item[0].parent).index(item[0]),
                                          item[0].parent.name))
    assert len(test) == len(test_files) == 9
    for image, label, (path, pixels) in zip(test.images, test.labels, test_files):
        assert test.class_names[label] == path.parent.name
        assert np.array_equal(np.round(image[0].numpy() * 255).astype(np.uint8), pixels)



def test_a_count_of_a_class_sorted_folder_holds_every_class(tmp_path):
    """count takes the first N images; read class folder by class folder, the first 6 of 3 classes
    of 8 training images were all 'digit-0' (a speaker's model trained on one class, or a slide of
    four zeros). The classes take turns."""
    digit_pngs(tmp_path / "mydigits")
    few = load_dataset("folder:mydigits", "train", root=tmp_path, count=6)
    assert few.labels.tolist() == [0, 1, 2, 0, 1, 2]
    every = load_dataset("folder:mydigits", "train", root=tmp_path)
    assert np.array_equal(every.images[:6], few.images) and np.bincount(every.labels.numpy()).tolist() == [8, 8, 8]


def test_a_relative_data_root_that_is_missing_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingDataError) as raised:
        load_dataset("folder:mydigits", "train", root="../my_data")
    assert f"no folder ../my_data/mydigits/ (that is {(tmp_path / '../my_data/mydigits').resolve()}/: a relative " \
           "data_root or $MECHINTERP_DATA is read from the folder the command runs in" in str(raised.value)

def test_colour_photographs_of_several_sizes_resize_to_the_models_input(tmp_path):
    from skimage import data as photos
    folder = tmp_path / "photos"
    for name, size in (("astronaut", (40, 30)), ("coffee", (64, 64)), ("chelsea", (50, 70))):
        for i in range(5):
            path = folder / name / f"{i}.{'jpg' if i % 2 else 'png'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(getattr(photos, name)()).resize(size).save(path)
    Image.fromarray(photos.camera()[:32, :32]).save(folder / "coffee" / "grey.png")     # one grey image
    with pytest.raises(ValueError, match=r"is \d+x\d+ pixels but .* is \d+x\d+: give the images one size, or "
                                         r"resize them as they are read: input_shape: \[C, H, W\] and resize_dataset"):
        load_dataset("folder:photos", "train", root=tmp_path)
    data = load_dataset("folder:photos", "train", root=tmp_path, image_shape=(3, 32, 32))
    assert data.images.shape[1:] == (3, 32, 32) and 0 <= data.images.min() and data.images.max() <= 1
    grey = Image.open(folder / "coffee" / "grey.png").convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    reference = np.asarray(grey, dtype=np.float32).transpose(2, 0, 1) / 255
    matches = [i for i, image in enumerate(data.images.numpy()) if np.abs(image - reference).max() < 1e-6]
    test = load_dataset("folder:photos", "test", root=tmp_path, image_shape=(3, 32, 32))
    assert matches or any(np.abs(image - reference).max() < 1e-6 for image in test.images.numpy())


def test_what_is_wrong_with_a_folder_is_one_message_naming_it(tmp_path):
    with pytest.raises(MissingDataError, match=r"no folder .*/absent/\. Put your images there as .*/absent/<class>/<image>"):
        load_dataset("folder:absent", "train", root=tmp_path)
    digit_pngs(tmp_path / "broken")
    (tmp_path / "broken" / "digit-1" / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"digit-1/notes.png: not an image PIL can read .*: remove or replace it"):
        load_dataset("folder:broken", "train", root=tmp_path)
    written = digit_pngs(tmp_path / "uneven", split_folders=True)
    for path in written:
        if path.parts[-3] == "test" and path.parent.name == "digit-2":
            path.unlink()
    (tmp_path / "uneven" / "test" / "digit-2").rmdir()
    with pytest.raises(ValueError, match=r"train/ has the classes \['digit-0', 'digit-1', 'digit-2'\] but test/ "
                                         r"has \['digit-0', 'digit-1'\]"):
        load_dataset("folder:uneven", "train", root=tmp_path)


def test_a_zoo_model_trains_on_a_folder_and_a_new_image_makes_it_stale(tmp_path, zoo_from):
    from mechinterp.models.config import read_zoo
    from mechinterp.models.inputs import model_stale_reason
    digit_pngs(tmp_path / "data" / "mydigits", per_class=40, classes=tuple(range(10)))
    zoo_text = f"""models:
  my-digits:
    architecture: MLP
    kwargs: {{hidden: 32, classes: 10, input_shape: [1, 8, 8]}}
    dataset: folder:mydigits
    data_root: {tmp_path / "data"}
    input_shape: [1, 8, 8]
    epochs: 30
    batch_size: 32
    learning_rate: 0.01
"""
    models = zoo_from(tmp_path, zoo_text)
    import json
    meta = json.loads((models / "my-digits" / "meta.json").read_text())
    assert meta["metrics"]["test_accuracy"] > 0.7                                     # 80 held-out digits, 10 classes
    zoo = read_zoo(tmp_path / "zoo.yaml")
    assert model_stale_reason("my-digits", zoo, models) is None
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(tmp_path / "data" / "mydigits" / "digit-0" / "new.png")
    assert model_stale_reason("my-digits", zoo, models) == "dataset changed: digit-0/new.png added"
    (tmp_path / "data" / "mydigits" / "digit-0" / "new.png").unlink()
    first = sorted((tmp_path / "data" / "mydigits" / "digit-3").iterdir())[0]
    Image.fromarray(np.full((8, 8), 255, np.uint8), mode="L").save(first)           # an image redrawn
    assert model_stale_reason("my-digits", zoo, models) == f"dataset changed: digit-3/{first.name} changed"


def test_dataset_change_names_the_files_added_removed_and_rewritten():
    from mechinterp.models.inputs import dataset_change
    old = {"a": None, "a/1.png": [10, 1], "a/2.png": [10, 1], "a/3.png": [10, 1]}
    assert dataset_change(old, {**old, "a/2.png": [11, 5]}) == "dataset changed: a/2.png changed"
    assert dataset_change(old, {"a": None, "a/1.png": [10, 1], "b": None}) == \
        "dataset changed: b added; a/2.png removed; a/3.png removed"
    assert dataset_change(old, {"a": None}) == \
        "dataset changed: a/1.png removed; a/2.png removed; a/3.png removed"
    assert dataset_change(old, {"b/" + str(i): [1, 1] for i in range(5)}) == \
        "dataset changed: b/0 added; b/1 added; b/2 added and 6 more"
    assert dataset_change(None, old) == "dataset changed"      # a meta.json of an older zoo
    assert dataset_change(old, old) == "dataset changed"       # same files, other contents: packaged data


FOLDER_ZOO = """models:
  good: {{architecture: MLP, kwargs: {{hidden: 8}}, dataset: digits, seed: 0, epochs: 1, batch_size: 64,
         learning_rate: 0.01}}
  corrupt:
    architecture: MLP
    kwargs: {{hidden: 8, input_shape: [1, 8, 8], classes: 3}}
    dataset: folder:mydigits
    data_root: {data}
    epochs: 1
  typo:
    architecture: MLP
    kwargs: {{hidden: 8, input_shape: [1, 8, 8], classes: 3}}
    dataset: folder:mydigit
    data_root: {data}
    epochs: 1
"""
SCRIPT = """
FIGURES = {"ok/good": {"make": "make_good", "models": ["good"], "outputs": []},
           "bad/corrupt": {"make": "make_corrupt", "models": ["corrupt"], "outputs": []}}

def make_good(ctx):
    return {"accuracy": ctx.model_meta("good")["metrics"]["test_accuracy"]}

def make_corrupt(ctx):
    return {"accuracy": ctx.model_meta("corrupt")["metrics"]["test_accuracy"]}
"""


def test_a_bad_folder_is_one_block_at_its_dataset_line_and_the_other_models_and_figures_still_build(tmp_path):
    """Trial H: a text file named .jpg, or a misspelt folder, printed two 50-line tracebacks and
    stopped every figure of the run; an empty class folder was not noticed at all."""
    from tests.test_zoo_inputs import made, run_figures, run_zoo
    digit_pngs(tmp_path / "data" / "mydigits")
    (tmp_path / "data" / "mydigits" / "digit-1" / "IMG_2041.jpg").write_text("this is not an image")
    (tmp_path / "models").mkdir()
    zoo_text = FOLDER_ZOO.format(data=tmp_path / "data")
    (tmp_path / "models" / "zoo.yaml").write_text(zoo_text)
    line = {name: zoo_text.splitlines().index(f"    dataset: folder:{folder}") + 1
            for name, folder in (("corrupt", "mydigits"), ("typo", "mydigit"))}
    zoo = run_zoo(tmp_path)
    assert zoo.returncode == 1 and "Traceback" not in zoo.stderr, zoo.stderr
    assert (f"models/zoo.yaml:{line['corrupt']}: dataset 'folder:mydigits': {tmp_path}/data/mydigits/digit-1/"
            "IMG_2041.jpg: not an image PIL can read") in zoo.stderr
    assert (f"models/zoo.yaml:{line['typo']}: dataset 'folder:mydigit': no folder "
            f"{tmp_path}/data/mydigit/ (did you mean mydigits?)") in zoo.stderr
    assert (tmp_path / "models" / "good" / "meta.json").is_file()          # built all the same
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "mine.py").write_text(SCRIPT)
    figures = run_figures(tmp_path)
    assert figures.returncode == 1 and "Traceback" not in figures.stderr, figures.stderr
    assert made(figures) == {"ok/good"} and "IMG_2041.jpg: not an image" in figures.stderr
    (tmp_path / "data" / "mydigits" / "digit-1" / "IMG_2041.jpg").unlink()
    assert made(run_figures(tmp_path)) == {"bad/corrupt"}
    (tmp_path / "data" / "mydigits" / "dog").mkdir()                      # an empty class folder
    empty = run_figures(tmp_path)
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    assert "Found no valid file for the classes dog" in empty.stderr and made(empty) == set()
