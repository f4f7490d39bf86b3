"""Data without labels: the reader, the labelled-or-not decision, and `adapt` with an unlabelled target."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from transferkit.data import has_labels, load_unlabelled
from transferkit.errors import DataError


def _png(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def _shifted_pair(tmp_path, with_target_labels: bool):
    """Tabular source and a target shifted along an axis that carries no class."""
    rng = np.random.default_rng(0)
    y = np.array(["cat", "dog"] * 60)
    signal = (y == "dog")[:, None] * np.r_[2.0, 0, 0, 0]  # (120, 4)
    np.savez(tmp_path / "source.npz", X=rng.normal(size=(120, 4)) + signal, y=y)
    target = rng.normal(size=(120, 4)) + signal + np.r_[0, 3.0, 0, 0]
    if with_target_labels:
        np.savez(tmp_path / "target.npz", X=target, y=y)
    else:
        np.savez(tmp_path / "target.npz", X=target)
    return tmp_path / "source.npz", tmp_path / "target.npz"


def test_an_image_folder_is_read_with_or_without_class_folders_and_skips_a_corrupt_file(tmp_path):
    _png(tmp_path / "flat" / "a.png", 10)
    _png(tmp_path / "flat" / "b.png", 20)
    (tmp_path / "flat" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(UserWarning, match="skipping corrupt image .*broken.png"):
        flat = load_unlabelled(str(tmp_path / "flat"))
    assert flat.modality == "image" and [p.rsplit("/", 1)[1] for p in flat.inputs] == ["a.png", "b.png"]
    _png(tmp_path / "classes" / "cat" / "a.png", 10)
    _png(tmp_path / "classes" / "dog" / "deeper" / "b.png", 20)
    assert len(load_unlabelled(str(tmp_path / "classes"))) == 2
    assert not has_labels(str(tmp_path / "flat")) and has_labels(str(tmp_path / "classes"))
    _png(tmp_path / "flat" / "thumbs" / "c.png", 30)  # images beside a sub-folder: not a class layout
    assert not has_labels(str(tmp_path / "flat"))
    with pytest.warns(UserWarning, match="broken.png"):
        assert len(load_unlabelled(str(tmp_path / "flat"))) == 3


def test_texts_come_from_a_txt_or_a_csv_text_column_and_labels_are_ignored(tmp_path):
    (tmp_path / "t.txt").write_text("good food\n\n  slow service  \n", encoding="utf-8")
    texts = load_unlabelled(str(tmp_path / "t.txt"))
    assert texts.modality == "text" and texts.inputs == ["good food", "slow service"]
    (tmp_path / "only.csv").write_text('review,stars\n"great, cheap",5\nmeh,2\n', encoding="utf-8")
    assert load_unlabelled(str(tmp_path / "only.csv"), text_column="review").inputs == ["great, cheap", "meh"]
    (tmp_path / "labelled.csv").write_text("text,label\nfine,pos\nbad,neg\n", encoding="utf-8")
    assert load_unlabelled(str(tmp_path / "labelled.csv")).inputs == ["fine", "bad"]
    assert not has_labels(str(tmp_path / "t.txt"))
    assert not has_labels(str(tmp_path / "only.csv"))
    assert has_labels(str(tmp_path / "only.csv"), label_column="stars")
    assert has_labels(str(tmp_path / "labelled.csv"))


def test_npz_arrays_are_images_or_feature_rows(tmp_path):
    np.savez(tmp_path / "img.npz", X=np.zeros((3, 8, 8), dtype=np.uint8))
    np.savez(tmp_path / "rows.npz", X=np.ones((4, 5)), y=np.arange(4))
    images, rows = load_unlabelled(str(tmp_path / "img.npz")), load_unlabelled(str(tmp_path / "rows.npz"))
    assert images.modality == "image" and images.inputs.shape == (3, 8, 8)
    assert rows.modality == "tabular" and rows.inputs.dtype == np.float32 and rows.inputs.shape == (4, 5)
    assert not has_labels(str(tmp_path / "img.npz")) and has_labels(str(tmp_path / "rows.npz"))


def test_a_built_in_name_gives_its_training_inputs():
    digits = load_unlabelled("digits")
    assert digits.modality == "image" and len(digits) > 1000
    assert has_labels("digits")


@pytest.mark.parametrize(
    ("make", "name", "message"),
    [
        (lambda p: (p / "e.txt").write_text("\n \n", encoding="utf-8"), "e.txt", "no non-empty line"),
        (lambda p: (p / "l.txt").write_bytes(b"caf\xe9\n"), "l.txt", "not UTF-8 text"),
        (lambda p: (p / "empty").mkdir(), "empty", "holds nothing"),
        (lambda p: (p / "c.csv").write_text("body\nx\n", encoding="utf-8"), "c.csv", "no column 'text'.*body"),
        (lambda p: np.savez(p / "n.npz", Z=np.zeros(3)), "n.npz", "no array X; arrays found: Z"),
        (lambda p: np.savez(p / "nan.npz", X=np.full((2, 2), np.nan)), "nan.npz", "NaN"),
        (lambda p: (p / "x.json").write_text("{}", encoding="utf-8"), "x.json", "unsupported file type '.json'"),
        (lambda p: None, "missing.txt", "no such file or folder"),
    ],
)
def test_unusable_unlabelled_data_gets_a_clear_error(tmp_path, make, name, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message):
        load_unlabelled(str(tmp_path / name))


def test_text_column_only_applies_to_a_csv(tmp_path):
    (tmp_path / "t.txt").write_text("a\n", encoding="utf-8")
    with pytest.raises(DataError, match="--text-column 'body' only applies to a .csv"):
        load_unlabelled(str(tmp_path / "t.txt"), text_column="body")


def test_a_pair_with_an_unlabelled_target_has_nothing_to_score(tmp_path):
    from transferkit.adaptation.pairs import load_pair

    source, target = _shifted_pair(tmp_path, with_target_labels=False)
    pair = load_pair(str(source), str(target))
    assert pair.target.shape == (120, 4) and pair.test is None
    assert pair.target_labels is None and pair.test_labels is None
    assert pair.classes == ["cat", "dog"]
    (tmp_path / "s.csv").write_text("text,stars\n" + "good,5\nbad,1\n" * 10, encoding="utf-8")
    (tmp_path / "t.csv").write_text("text\nfine\n", encoding="utf-8")
    with pytest.raises(DataError, match="--label-column 'stars' is not a column of target"):
        load_pair(str(tmp_path / "s.csv"), str(tmp_path / "t.csv"), load_options={"label_column": "stars"})
    (tmp_path / "t.txt").write_text("a text\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds tabular data but target .* holds text data"):
        load_pair(str(source), str(tmp_path / "t.txt"))


def test_cli_adapt_to_an_unlabelled_target_reports_what_can_be_seen_without_labels(tmp_path, capsys):
    from transferkit.cli import main

    source, target = _shifted_pair(tmp_path, with_target_labels=False)
    argv = ["adapt", "--source", str(source), "--target", str(target), "--method", "shallow-coral"]
    assert main([*argv, "--seeds", "1", "--json", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "120 without labels: nothing can be scored" in out
    assert "predictions changed" in out and "target accuracy" not in out
    record = json.loads((tmp_path / "a.json").read_text())
    assert record["target_has_labels"] is False and record["sizes"]["test"] == 0
    assert record["methods"]["source-only"]["changed"] == [0.0]
    assert 0.0 <= record["methods"]["shallow-coral"]["changed"][0] <= 1.0
    assert "accuracy" not in record["methods"]["shallow-coral"] and "oracle" not in record
    assert record["selected"]["choices"][0]["method"] in ("source-only", "shallow-coral")


def test_cli_adapt_to_a_labelled_target_still_scores(tmp_path, capsys):
    from transferkit.cli import main

    source, target = _shifted_pair(tmp_path, with_target_labels=True)
    argv = ["adapt", "--source", str(source), "--target", str(target), "--method", "shallow-coral", "--seeds", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "target accuracy" in out and "held out (their labels only score the methods)" in out


def test_similarity_reads_data_without_labels(tmp_path, capsys):
    from transferkit.cli import main
    from transferkit.data import load_dataset

    digits = load_dataset("digits").train
    (tmp_path / "flat").mkdir()
    for i in range(30):  # a flat folder: no class sub-folders, so no labels
        Image.fromarray(digits.inputs[i]).save(tmp_path / "flat" / f"{i:02d}.png")
    np.savez(tmp_path / "mnist.npz", X=load_dataset("mnist").train.inputs[:30])  # X only
    argv = ["similarity", str(tmp_path / "flat"), str(tmp_path / "mnist.npz"), "--image-size", "32", "--quiet"]
    assert main([*argv, "--json", str(tmp_path / "s.json")]) == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["n_first"] == 30 == record["n_second"]
    assert record["proxy_a_distance"] > 0.5  # 8x8 digits against 28x28 MNIST: far apart


def test_cli_adapt_saves_the_choice_as_a_model_predict_reads(tmp_path, capsys, tiny_backbone, zoo_home):
    from transferkit.backbones.zoo import save_to_zoo
    from transferkit.cli import main
    from transferkit.data import load_dataset

    save_to_zoo(tiny_backbone(), "tiny")
    digits = load_dataset("digits").test
    (tmp_path / "flat").mkdir()
    for i in range(24):
        Image.fromarray(digits.inputs[i]).save(tmp_path / "flat" / f"{i:02d}.png")
    argv = ["adapt", "--source", "digits", "--target", str(tmp_path / "flat"), "--backbone", "zoo:tiny"]
    argv += ["--method", "kmm", "--image-size", "32", "--seeds", "1", "--quiet", "--out", str(tmp_path / "model")]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"to {tmp_path / 'model'}" in out and "brought to" not in out  # image files: no resizing of the pair
    assert (tmp_path / "model" / "config.json").is_file()
    assert main(["predict", str(tmp_path / "model"), str(tmp_path / "flat" / "00.png"), "--quiet"]) == 0
    label, probability, path = capsys.readouterr().out.strip().split("\t")
    assert label in [str(d) for d in range(10)] and 0 < float(probability) <= 1 and path.endswith("00.png")
    assert main(["predict", str(tmp_path / "model"), str(tmp_path / "flat"), "--quiet"]) == 0  # a whole folder
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 24 and lines[0].split("\t")[0] == label and lines[-1].endswith("23.png")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backbone", "tfidf"], "tfidf features are not one"),
        ([], "holds feature vectors"),
    ],
)
def test_cli_adapt_out_needs_a_backbone(tmp_path, capsys, extra, message):
    from transferkit.cli import main

    source, target = _shifted_pair(tmp_path, with_target_labels=False)
    argv = ["adapt", "--source", str(source), "--target", str(target), "--out", str(tmp_path / "m"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_extract_writes_one_array_for_data_without_labels(tmp_path, capsys, tiny_backbone, zoo_home):
    from transferkit.backbones.zoo import save_to_zoo
    from transferkit.cli import main

    save_to_zoo(tiny_backbone(), "tiny")
    for i in range(5):
        _png(tmp_path / "flat" / f"{i}.png", 40 * i)
    argv = ["extract", str(tmp_path / "flat"), "--backbone", "zoo:tiny", "--image-size", "32", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "f.npz")]) == 0, capsys.readouterr().err
    with np.load(tmp_path / "f.npz") as archive:
        assert archive.files == ["X"] and archive["X"].shape[0] == 5
    assert main([*argv, "--out", str(tmp_path / "g.npz"), "--split", "train"]) == 2
    assert "has no labels, so no train/test split: leave out --split" in capsys.readouterr().err


def test_a_text_csv_refuses_a_quote_left_open_and_an_unquoted_delimiter(tmp_path):
    (tmp_path / "open.csv").write_text(
        'text,site\n"broken start,a\nsecond row,b\nthird",a\nfourth,b\n', encoding="utf-8"
    )
    with pytest.raises(DataError, match="lines 2-4 are read as one text.*'second row,b'.*quote left open on line 2"):
        load_unlabelled(str(tmp_path / "open.csv"))
    # a paragraph with a comma in it is not a row: "so" is no value of the site column
    paragraphs = 'text,site\n"first paragraph\nthen, so",a\nnext,b\n'
    (tmp_path / "paragraphs.csv").write_text(paragraphs, encoding="utf-8")
    assert load_unlabelled(str(tmp_path / "paragraphs.csv")).inputs == ["first paragraph\nthen, so", "next"]
    (tmp_path / "extra.csv").write_text("text,id\ngood, cheap,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 has 3 fields but the header has 2"):
        load_unlabelled(str(tmp_path / "extra.csv"))


def test_similarity_reads_a_csv_text_column_by_name(tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    import transferkit.features as features_module
    from transferkit.cli import main

    def fake_extract(backbone, inputs, **kwargs):  # (N, 3): the text length and two constants
        return SimpleNamespace(features=np.asarray([[len(t), 1.0, 2.0] for t in inputs], dtype=np.float32))

    monkeypatch.setattr(features_module, "extract_features", fake_extract)
    (tmp_path / "a.csv").write_text("review\n" + "".join(f"short {i}\n" for i in range(20)), encoding="utf-8")
    (tmp_path / "b.txt").write_text("".join(f"a much longer sentence number {i}\n" for i in range(20)))
    argv = ["similarity", str(tmp_path / "a.csv"), str(tmp_path / "b.txt"), "--quiet"]
    argv += ["--json", str(tmp_path / "s.json")]
    assert main(argv) == 2 and "has no column 'text'" in capsys.readouterr().err
    assert main([*argv, "--text-column", "review"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "s.json").read_text())["n_first"] == 20


def test_a_handful_of_labelled_examples_is_read_whole_one_per_class_or_of_one_class(tmp_path):
    from transferkit.data import read_examples

    np.savez(tmp_path / "two.npz", X=np.zeros((2, 3)), y=np.array(["cat", "dog"]))
    np.savez(tmp_path / "one.npz", X=np.zeros((3, 3)), y=np.array(["cat"] * 3))
    two, one = read_examples(str(tmp_path / "two.npz")), read_examples(str(tmp_path / "one.npz"))
    assert two.classes == ["cat", "dog"] and two.labels.tolist() == [0, 1] and len(one) == 3 and one.classes == ["cat"]
    for part, cls, value in (("train", "cat", 10), ("train", "dog", 20), ("test", "dog", 30), ("test", "emu", 40)):
        _png(tmp_path / "split" / part / cls / f"{value}.png", value)
    merged = read_examples(str(tmp_path / "split"))
    assert merged.classes == ["cat", "dog", "emu"] and sorted(merged.labels.tolist()) == [0, 1, 1, 2]
    (tmp_path / "few.csv").write_text("text,label\nfine,pos\n", encoding="utf-8")
    assert read_examples(str(tmp_path / "few.csv")).inputs == ["fine"]
    digits = read_examples("digits")
    assert len(digits) == 1797 and len(digits.classes) == 10


def test_cli_adapt_takes_one_labelled_target_example_per_class(tmp_path, capsys):
    from transferkit.cli import main

    source, target = _shifted_pair(tmp_path, with_target_labels=False)
    np.savez(tmp_path / "few.npz", X=np.load(target)["X"][:2], y=np.array(["cat", "dog"]))
    argv = ["adapt", "--source", str(source), "--target", str(target), "--method", "shallow-coral", "--seeds", "1"]
    assert main([*argv, "--target-labelled", str(tmp_path / "few.npz"), "--quiet"]) == 0, capsys.readouterr().err
    assert "choice by 2 labelled target examples" in capsys.readouterr().out
