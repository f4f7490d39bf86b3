"""`transferkit adapt` on awkward user data: resolutions, CSV columns, tiny targets, leaking labelled sets."""

from __future__ import annotations

import csv
import types
import warnings

import numpy as np
import pytest
from PIL import Image

from transferkit.adaptation import match_resolution
from transferkit.adaptation.pairs import load_pair
from transferkit.adaptation.run import fit_method
from transferkit.cli import main
from transferkit.data import load_unlabelled
from transferkit.errors import DataError


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _user_error(capsys, argv: list[str]) -> str:
    """The one ``transferkit: error:`` line of a refused run (exit status 2, no traceback)."""
    status, _, err = _run(capsys, argv)
    lines = [line for line in err.strip().splitlines() if line.startswith("transferkit: error:")]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _striped(n: int, size: int, shift: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.array(["plain", "striped"] * (n // 2))
    X = rng.integers(0, 80, size=(n, size, size)) + shift
    X[y == "striped", :, ::4] = 220
    return np.clip(X, 0, 255).astype(np.uint8), y


def _feature_pair(tmp_path, target_rows: int = 60, target_labels: bool = False) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    y = np.array(["cat", "dog"] * 30)
    signal = (y == "dog")[:, None] * np.r_[2.0, 0, 0, 0]  # (60, 4)
    np.savez(tmp_path / "source.npz", X=rng.normal(size=(60, 4)) + signal, y=y)
    target = (rng.normal(size=(60, 4)) + signal + np.r_[0, 3.0, 0, 0])[:target_rows]
    if target_labels:
        np.savez(tmp_path / "target.npz", X=target, y=y[:target_rows])
    else:
        np.savez(tmp_path / "target.npz", X=target)
    return str(tmp_path / "source.npz"), str(tmp_path / "target.npz")


def test_labelled_images_smaller_than_both_domains_bring_the_whole_pair_to_their_resolution(tmp_path, monkeypatch):
    source, source_y = _striped(20, 16, 0, 0)
    target, _ = _striped(20, 12, 60, 1)
    few, few_y = _striped(6, 6, 60, 2)
    np.savez(tmp_path / "source.npz", X=source, y=source_y)
    np.savez(tmp_path / "target.npz", X=target)
    np.savez(tmp_path / "few.npz", X=few, y=few_y)
    read = {}  # part -> the image array's shape the backbone was given

    def extract(model, inputs, desc, **kwargs):
        read[desc.removeprefix("extracting ")] = np.shape(inputs)
        return types.SimpleNamespace(features=np.asarray(inputs, dtype=np.float32).reshape(len(inputs), -1))

    monkeypatch.setattr(
        "transferkit.backbones.create_backbone",
        lambda name: types.SimpleNamespace(cfg=types.SimpleNamespace(modality="image")),
    )
    monkeypatch.setattr("transferkit.features.extract_features", extract)
    pair = load_pair(
        str(tmp_path / "source.npz"),
        str(tmp_path / "target.npz"),
        backbone="x",
        labelled_name=str(tmp_path / "few.npz"),
    )
    assert read == {"source": (20, 6, 6), "target": (20, 6, 6), "labelled": (6, 6, 6)}
    assert pair.source.shape[1] == pair.target.shape[1] == pair.labelled.shape[1] == 36
    assert np.shape(pair.source_inputs)[1:] == np.shape(pair.target_inputs)[1:] == (6, 6)  # what --out fits on
    assert pair.notes == [
        "both domains brought to 6x6 px (that of the labelled target examples, smaller than both) before the backbone"
    ]


def test_match_resolution_brings_any_number_of_arrays_to_the_smallest():
    a, b, c = np.full((2, 16, 16), 90, np.uint8), np.zeros((3, 12, 12, 3), np.uint8), np.zeros((1, 6, 6), np.uint8)
    small_a, small_b, small_c = match_resolution(a, b, c)
    assert small_a.shape == (2, 6, 6) and (small_a == 90).all()
    assert small_b.shape == (3, 6, 6, 3) and small_c is c
    paths = ["a.png"]
    assert match_resolution(a, paths) == (a, paths)  # files are read at the backbone's size, each as it is


def _write_csv(path, header: list[str], rows: list[tuple[str, ...]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _reviews(n: int, extra: str = "") -> list[tuple[str, str]]:
    good, bad = ["great food", "lovely staff", "tasty meal"], ["awful food", "rude staff", "bland meal"]
    return [(f"{(good if i % 2 else bad)[i % 3]} {extra}", "pos" if i % 2 else "neg") for i in range(n)]


def test_csv_columns_name_the_csv_sources_columns_beside_a_txt_or_built_in_target(tmp_path, capsys):
    source = _write_csv(tmp_path / "source.csv", ["review", "stars"], _reviews(30))
    (tmp_path / "target.txt").write_text("\n".join(t for t, _ in _reviews(20, "très bien ☕")), encoding="utf-8")
    common = ["--backbone", "tfidf", "--method", "kmm", "--seeds", "1", "--text-column", "review"]
    argv = ["adapt", "--source", source, "--target", str(tmp_path / "target.txt"), *common, "--label-column", "stars"]
    status, out, err = _run(capsys, argv)
    assert status == 0, err
    assert "20 without labels" in out
    line = _user_error(
        capsys, ["adapt", "--source", source, "--target", "sentiment-yelp", *common, "--label-column", "stars"]
    )
    assert "label sets differ" in line  # read, its columns left to the CSV: not "--text-column only applies to"
    texts = _write_csv(tmp_path / "texts.csv", ["review"], [(t,) for t, _ in _reviews(20, "ok")])
    line = _user_error(capsys, ["adapt", "--source", source, "--target", texts, *common, "--label-column", "stars"])
    assert "--label-column 'stars' is not a column of target" in line and "name the source's 'label'" in line


def test_a_target_of_one_example_is_refused_in_the_users_terms(tmp_path, capsys):
    source, target = _feature_pair(tmp_path, target_rows=1)
    line = _user_error(capsys, ["adapt", "--source", source, "--target", target, "--method", "kmm", "--seeds", "1"])
    assert "the target has 1 unlabelled example(s); adaptation needs at least 2" in line
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(DataError, match="the target has 1 unlabelled example"):
        fit_method("kmm", X, np.arange(10) % 2, X[:1])  # the estimator's path: kmm ran on one point


def test_too_many_target_labels_per_class_names_the_option_and_the_class(tmp_path, capsys):
    source, target = _feature_pair(tmp_path, target_labels=True)
    argv = ["adapt", "--source", source, "--target", target, "--method", "kmm", "--seeds", "1"]
    line = _user_error(capsys, [*argv, "--target-labels-per-class", "100"])
    assert "--target-labels-per-class 100: class 'cat' has only 24 examples" in line
    assert "use --target-labels-per-class 24 or fewer" in line
    assert "--steps must be a positive int. Got 0" in _user_error(capsys, [*argv, "--steps", "0"])


def test_labelled_examples_from_the_targets_test_part_are_refused(tmp_path, capsys):
    source, target = _feature_pair(tmp_path, target_labels=True)
    argv = ["adapt", "--source", source, "--target", target, "--method", "kmm", "--seeds", "1"]
    line = _user_error(capsys, [*argv, "--target-labelled", target])  # its test part would choose, then score
    assert "12 of the 60 labelled target examples" in line and "also in the target's test part" in line
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "few.npz", X=rng.normal(size=(6, 4)), y=np.array(["cat", "dog"] * 3))
    status, out, err = _run(capsys, [*argv, "--target-labelled", str(tmp_path / "few.npz")])
    assert status == 0 and "choice by 6 labelled target examples" in out, err


def test_a_folder_of_only_corrupt_images_says_so_in_a_sentence(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "b.jpg").write_bytes(b"nor a jpeg")
    with warnings.catch_warnings(), pytest.raises(DataError) as raised:
        warnings.simplefilter("ignore")
        load_unlabelled(str(tmp_path))
    assert "holds only corrupt images (2)" in str(raised.value)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "c.png")
    with pytest.warns(UserWarning, match="skipping corrupt image"):
        assert len(load_unlabelled(str(tmp_path))) == 1


def test_a_target_folder_of_dated_sub_folders_is_told_how_to_adapt_without_labels(tmp_path, capsys):
    images, labels = _striped(8, 16, 0, 0)
    np.savez(tmp_path / "source.npz", X=images, y=labels)
    for year in ("2023", "2024"):
        (tmp_path / "photos" / year).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(images[i]).save(tmp_path / "photos" / year / f"{i}.png")
    argv = ["adapt", "--source", str(tmp_path / "source.npz"), "--target", str(tmp_path / "photos")]
    line = _user_error(capsys, argv)
    assert "label sets differ" in line and "2023" in line and "one folder without sub-folders" in line
