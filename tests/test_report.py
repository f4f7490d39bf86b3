"""The HTML report: self-contained, valid HTML5, every part of a record shown; `fit --out` writes it."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import html5lib
import numpy as np
import pytest
from PIL import Image

from transferkit.cli import main
from transferkit.errors import DataError
from transferkit.report import (
    accuracy_interval,
    curve_figure,
    evaluation_record,
    labels_saved,
    load_record,
    record_kind,
    render_report,
    save_figure,
    thumbnail,
    write_report,
)

CLASSES = ["T-shirt", "trouser", "<b>bag & co</b>"]  # a name with markup: it must come out as text


def _curve_record():
    """A curve record made from hand-made correctness, as run_curve lays it out."""
    rng = np.random.default_rng(0)
    ks, seeds, n = [1, 2, 5], [0, 1], 60
    levels = {"linear-probe": (0.6, 0.7, 0.8), "scratch": (0.35, 0.45, 0.65), "classical": (0.4, 0.5, 0.6)}
    methods = []
    for name, accuracy in levels.items():
        points = []
        for k, level in zip(ks, accuracy):
            correct = rng.random((len(seeds), n)) < level
            mean, low, high = accuracy_interval(correct)
            points.append({"k": k, "n_train": 3 * k, "accuracy": mean, "ci95": [low, high],
                           "accuracy_per_seed": correct.mean(axis=1).tolist(), "fit_seconds_per_seed": [0.5, 0.5],
                           "evaluate_seconds_per_seed": [0.1, 0.1]})  # fmt: skip
        role = "transfer" if name == "linear-probe" else "baseline"
        methods.append({"name": name, "label": f"{name} (test)", "role": role, "points": points})
    curves = {m["name"]: [p["accuracy"] for p in m["points"]] for m in methods[1:]}
    saved = [
        {"method": "linear-probe", **labels_saved(k, methods[0]["points"][i]["accuracy"], ks, curves, 3)}
        for i, k in enumerate(ks)
    ]
    y_true = np.arange(n) % 3
    y_pred = np.where(np.arange(n) % 4 == 0, (y_true + 1) % 3, y_true)
    images = rng.integers(0, 255, size=(n, 28, 28), dtype=np.uint8)
    evaluation = evaluation_record(CLASSES, y_true, y_pred, images, modality="image", model="linear-probe (test)")
    return {
        "kind": "curve", "dataset": "hand-made", "classes": CLASSES, "n_classes": 3, "test_size": n,
        "labels_per_class": ks, "seeds": seeds, "methods": methods, "labels_saved": saved, "evaluation": evaluation,
        "gains": [{"method": "linear-probe", "k": k, "against": "classical", "gain": 0.1, "ci95": [0.02, 0.18],
                   "verdict": "transfer helped"} for k in ks],
        "interval": "95% interval", "wall_seconds": 12.0,
    }  # fmt: skip


class _Structure(HTMLParser):
    """Balanced tags and the document's skeleton, with the standard library's parser."""

    VOID = {"meta", "img", "br", "hr", "input", "link", "col", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.counts, self.problems, self.urls = [], {}, [], []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "action", "srcset")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _check_page(page: str) -> _Structure:
    html5lib.HTMLParser(strict=True).parse(page)  # raises on any HTML5 parse error
    structure = _Structure()
    structure.feed(page)
    structure.close()
    assert structure.problems == [] and structure.stack == []
    assert all(structure.counts.get(tag) == 1 for tag in ("html", "head", "body", "title"))
    return structure


def _assert_self_contained(page: str, structure: _Structure) -> None:
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    for url in structure.urls:  # every link and image is in the page itself
        assert url.startswith(("data:", "#")), url
        if url.startswith("data:image/svg+xml;base64,"):
            svg = base64.b64decode(url.split(",", 1)[1]).decode()
            assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', svg))
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page)


def test_a_curve_report_is_valid_self_contained_html(tmp_path):
    record_file = tmp_path / "curve.json"
    record_file.write_text(json.dumps(_curve_record()))
    out = write_report([record_file], tmp_path / "out" / "report.html")
    page = out.read_text()
    structure = _check_page(page)
    _assert_self_contained(page, structure)
    for fragment in ('id="plot-1"', 'id="table-1"', 'id="confusion-1"', 'id="examples-1"', "Time spent"):
        assert fragment in page
    assert "&lt;b&gt;bag &amp; co&lt;/b&gt;" in page and "<b>bag" not in page
    assert "labels saved" in page and "linear-probe (test)" in page
    assert out.stat().st_mode & 0o044 == 0o044  # readable by others: a page to share


def test_the_checks_can_fail():
    with pytest.raises(html5lib.html5parser.ParseError):
        html5lib.HTMLParser(strict=True).parse("<!DOCTYPE html><html><body><p>x</div></body></html>")
    structure = _Structure()
    structure.feed("<html><head><title>t</title></head><body><div><span></div></body></html>")
    assert structure.problems
    with pytest.raises(AssertionError):
        page = '<!DOCTYPE html><html><head><title>t</title></head><body><img src="https://x.org/a.png" alt=""></body>'
        _assert_self_contained(page, _check_page(page + "</html>"))


def test_evaluation_record_counts_and_spreads_the_examples():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([1, 1, 0, 1, 0, 2, 0, 0])
    texts = [f"text {i} " + "x" * 400 * (i == 6) for i in range(8)]
    evaluation = evaluation_record(CLASSES, y_true, y_pred, texts, modality="text", model="m", n_examples=4)
    assert evaluation["confusion"] == [[1, 2, 0], [1, 1, 0], [2, 0, 1]]
    assert evaluation["accuracy"] == pytest.approx(3 / 8)
    # one of each true class first, in test order, then the next of class 0
    assert [e["index"] for e in evaluation["misclassified"]] == [0, 4, 6, 1]
    assert len(evaluation["misclassified"][2]["text"]) <= 280 and evaluation["misclassified"][2]["text"].endswith("…")
    with pytest.raises(DataError, match="class indices"):
        evaluation_record(CLASSES, [0, 5], [0, 1], ["a", "b"], modality="text", model="m")


def test_thumbnails_are_small_pngs(tmp_path):
    big = np.zeros((200, 100, 3), dtype=np.uint8)
    big[:, :50] = 255
    Image.fromarray(big).save(tmp_path / "big.png")
    for item, size in ((big, (32, 64)), (tmp_path / "big.png", (32, 64)), (np.ones((8, 8, 1)) * 0.5, (8, 8))):
        uri = thumbnail(item)
        assert uri.startswith("data:image/png;base64,")
        with Image.open(__import__("io").BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
            assert image.size == size
    with pytest.raises(DataError, match="cannot read image"):
        thumbnail(tmp_path / "missing.png")


def test_the_plot_is_drawn_and_the_same_each_time(tmp_path):
    record = _curve_record()
    png = save_figure(curve_figure(record), tmp_path / "c.png")
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    coloured = np.abs(pixels - pixels.mean(axis=2, keepdims=True)).max(axis=2) > 40
    assert coloured.mean() > 0.005  # coloured lines and shaded intervals, not just axes
    first = save_figure(curve_figure(record), tmp_path / "a.svg").read_bytes()
    assert first == save_figure(curve_figure(record), tmp_path / "b.svg").read_bytes()


def test_records_of_other_commands_and_old_fit_records(tmp_path):
    rank = {"dataset": "digits", "score": "logme", "ranking": [{"rank": 1, "name": "a", "score": 1.5}]}
    old_fit = {"dataset": "digits", "strategy": "linear-probe", "accuracy": 0.8, "accuracy_per_seed": [0.8],
               "baselines": {"scratch": 0.6}, "labels_per_class": 5, "gain": None}  # fmt: skip
    transfer_lr = {"source": "hello", "target": "digits", "representation": "raw", "rows": [{"k": 4}]}
    pretrain = {"name": "tiny", "path": "zoo/tiny", "provenance": {"data": "mnist"}}
    assert record_kind(rank) == "rank" and record_kind(old_fit) == "fit" and record_kind({"x": 1}) == "run"
    assert record_kind(transfer_lr) == "transfer-lr" and record_kind(pretrain) == "pretrain"
    page = render_report([("rank.json", rank), ("fit.json", old_fit), ("lr.json", transfer_lr), ("p.json", pretrain)])
    _check_page(page)
    assert "logme" in page and "0.800" in page and "scratch" in page and "hello" in page


def test_load_record_says_what_is_wrong(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    for path, fragment in (
        (tmp_path / "empty", "has no run.json"),
        (tmp_path / "nothing", "no such run folder"),
        (tmp_path / "bad.json", "not valid JSON"),
        (tmp_path / "list.json", "JSON object"),
    ):
        with pytest.raises(DataError, match=fragment):
            load_record(path)


def _image_folder(root, per_class=6):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("circle", "square")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 30, size=(12, 12)).astype(np.uint8)
            image[:, :: 4 - 2 * c] = 240
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def test_fit_writes_its_report_and_the_report_command_combines_runs(tmp_path, capsys):
    data = _image_folder(tmp_path / "shapes")
    argv = ["fit", str(data), "--image-size", "32", "--test-size", "4", "--baselines", "classical", "--seeds", "2"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"report: {tmp_path / 'run' / 'report.html'}"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["kind"] == "fit" and [m["role"] for m in record["methods"]] == ["transfer", "baseline"]
    evaluation = record["evaluation"]
    assert np.trace(evaluation["confusion"]) / 4 == pytest.approx(record["accuracy_per_seed"][0])
    assert all(e["thumbnail"].startswith("data:image/png") for e in evaluation["misclassified"])
    page = (tmp_path / "run" / "report.html").read_text()
    _assert_self_contained(page, _check_page(page))
    assert 'id="plot-1"' in page and 'id="confusion-1"' in page

    record_file = tmp_path / "curve.json"
    record_file.write_text(json.dumps(_curve_record()))
    assert main(["report", str(tmp_path / "run"), str(record_file), "--out", str(tmp_path / "both.html")]) == 0
    both = (tmp_path / "both.html").read_text()
    assert 'id="run-1"' in both and 'id="run-2"' in both and 'id="plot-2"' in both
    capsys.readouterr()
    assert main(["report", str(tmp_path / "run"), str(record_file)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


_MODEL_CONFIG = {"format": "transferkit-model", "format_version": 1, "strategy": "linear-probe", "classes": ["a"]}


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"kind": "fit"}, "fit record '{file}': field 'accuracy' is missing"),
        ({"kind": "fit", "methods": [{"name": "lp", "accuracy": 0.9, "ci95": [0.8]}]}, "'methods[0].ci95'"),
        ({"kind": "curve"}, "curve record '{file}': field 'labels_per_class' is missing"),
        ({"kind": "curve", "labels_per_class": [1, 2]}, "field 'methods' is missing"),
        ({}, "'{file}' is not a transferkit run record: it has no 'kind'"),
        ({"kind": "banana"}, "kind 'banana' is unknown; expected one of fit, curve, rank"),
        (_MODEL_CONFIG, "is not a transferkit run record"),
    ],
)
def test_report_refuses_what_is_not_a_run_record(record, fragment, tmp_path, capsys):
    file = tmp_path / "run" / "run.json"
    file.parent.mkdir()
    file.write_text(json.dumps(record))
    with pytest.raises(DataError, match=re.escape(fragment.format(file=file))):
        load_record(file)
    with pytest.raises(DataError, match="run record|field"):
        render_report([("r.json", record)])
    assert main(["report", str(file.parent)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("transferkit: error:") and fragment.format(file=file) in err
    assert not (file.parent / "report.html").exists()


def test_a_damaged_part_of_a_curve_record_is_named_not_a_traceback(tmp_path):
    record = _curve_record()
    damaged = {**record, "methods": [{**record["methods"][0], "points": record["methods"][0]["points"][:1]}]}
    with pytest.raises(DataError, match=r"methods\[0\].points' is missing or not a list of 3 objects"):
        render_report([("c.json", damaged)])
    with pytest.raises(DataError, match="curve record 'c.json' cannot be shown: field 'ci95' is missing"):
        render_report([("c.json", {**record, "gains": [{"method": "linear-probe", "k": 1}]})])


def test_report_out_never_replaces_the_record_it_reads(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps(_curve_record()))
    before = (run / "run.json").read_bytes()
    for argv in (["report", str(run)], ["report", str(tmp_path / "." / "run" / "run.json")]):
        assert main([*argv, "--out", str(run / "run.json")]) == 2
        err = capsys.readouterr().err
        assert f"--out '{run / 'run.json'}' is the run record that report reads; choose another output path" in err
    assert (run / "run.json").read_bytes() == before and sorted(p.name for p in run.iterdir()) == ["run.json"]


def test_adapt_records_show_each_method_and_the_choice_with_its_criterion(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.array(["cat", "dog"] * 60)
    signal = (y == "dog")[:, None] * np.r_[2.0, 0, 0, 0]  # (120, 4)
    np.savez(tmp_path / "s.npz", X=rng.normal(size=(120, 4)) + signal, y=y)
    np.savez(tmp_path / "t.npz", X=rng.normal(size=(120, 4)) + signal + np.r_[0, 3.0, 0, 0], y=y)
    np.savez(tmp_path / "u.npz", X=rng.normal(size=(120, 4)) + signal + np.r_[0, 3.0, 0, 0])  # no labels
    common = ["--method", "shallow-coral,self-training", "--seeds", "2", "--quiet"]
    for target, name in (("t.npz", "scored.json"), ("u.npz", "unscored.json")):
        argv = ["adapt", "--source", str(tmp_path / "s.npz"), "--target", str(tmp_path / target), *common]
        assert main([*argv, "--json", str(tmp_path / name)]) == 0, capsys.readouterr().err
    scored, unscored = (load_record(str(tmp_path / n)) for n in ("scored.json", "unscored.json"))
    old = json.loads(json.dumps(scored))  # as written before 'changed' and 'criterion' existed
    for row in old["methods"].values():
        del row["changed"]
    del old["selected"]["criterion"]
    page = render_report([("scored.json", scored), ("unscored.json", unscored), ("old.json", old)])
    _assert_self_contained(page, _check_page(page))
    text = re.sub(r"<[^>]+>", " ", page)
    assert text.count("selection error (reverse validation)") == 3 and "predictions changed" in text
    assert "gain vs source-only (95%)" in text and "Target oracle" in text
    assert "(the target has no labels: unverified)" in text and "By reverse validation, one per seed:" in text
    assert f"{scored['selected']['accuracy']:.3f}" in text
