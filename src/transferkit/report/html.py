"""One self-contained HTML page from run records.

The page loads nothing from outside — no script at all, CSS inline, system fonts, plots and
thumbnails as ``data:`` URIs — so it can be mailed, archived, or opened offline. Each record gets
a section: for a curve its plot, the comparison at every ``k`` with intervals and labels saved;
for a fit the methods with intervals and the gain; for both the best model's confusion matrix and
a few misclassified test examples, the settings and the time spent. Records of other commands
(``rank``, ``adapt``, ...) are shown as their settings and tables.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write
from ..errors import DataError, TransferkitError
from .curve import describe_labels_saved
from .records import check_record, load_record, mean_std, record_kind

__all__ = ["render_report", "write_report"]

_CSS = """
body{font-family:system-ui,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;background:#f6f7f9;color:#1d232a}
main{max-width:1100px;margin:0 auto;padding:8px 24px 40px}
header{background:#1f3b57;color:#fff;padding:18px 24px}
header h1{margin:0;font-size:1.5rem}
header p{margin:4px 0 0;opacity:.85}
nav a{color:#fff;margin-right:14px}
section.run{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:20px 0;padding:4px 22px 18px}
h2{font-size:1.25rem;margin:16px 0 4px}
h3{font-size:1.02rem;margin:22px 0 6px;color:#1f3b57}
p.source{color:#5b6570;font-size:.85rem;margin:0 0 10px}
p.verdict{font-size:1.02rem;background:#eef4fa;border-left:4px solid #1f6fb4;padding:8px 12px}
table{border-collapse:collapse;font-size:.88rem;margin:6px 0}
th,td{border:1px solid #d5dae0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.confusion td{text-align:right;min-width:34px;font-variant-numeric:tabular-nums}
table.confusion th{font-weight:normal;white-space:nowrap}
figure{margin:8px 0}
figure.plot img{max-width:100%;height:auto;border:1px solid #e3e6ea;background:#fff}
figcaption{color:#5b6570;font-size:.85rem}
div.examples{display:flex;flex-wrap:wrap;gap:10px}
div.examples figure{width:150px;border:1px solid #e3e6ea;border-radius:4px;padding:6px;background:#fafbfc}
div.examples img{width:84px;height:84px;image-rendering:pixelated;display:block;margin:0 auto 4px}
div.examples blockquote{margin:0 0 4px;font-size:.85rem}
.bad{color:#b3261e}.good{color:#1e7d32}
footer{color:#5b6570;font-size:.8rem;text-align:center;padding:10px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, cls: str = "", id: str = "") -> str:
    """A table; cells are escaped text, or ``("raw", html)`` for markup this module made."""

    def cell(value: Any, tag: str) -> str:
        if isinstance(value, tuple) and value and value[0] == "raw":
            return f"<{tag}{value[2] if len(value) > 2 else ''}>{value[1]}</{tag}>"
        numeric = tag == "td" and isinstance(value, str) and value[:1] != "" and value[:1] in "0123456789+-−"
        return f"<{tag}{' class=num' if numeric else ''}>{_e(value)}</{tag}>"

    attributes = (f' class="{cls}"' if cls else "") + (f' id="{id}"' if id else "")
    head = "".join(cell(h, "th") for h in header)
    body = "".join("<tr>" + "".join(cell(v, "td") for v in row) + "</tr>" for row in rows)
    return f"<table{attributes}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _interval(values: Sequence[float]) -> str:
    return f"{values[0]:.3f} – {values[1]:.3f}"


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _settings(record: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    """The record's scalar settings (and short lists of them) as a two-column table."""
    rows = []
    for key in keys or list(record):
        value = record.get(key)
        if key in ("kind", "evaluation") or value is None:
            continue
        # an object's own settings (a pretrain record's provenance: its data, accuracy, ...) one level down
        entries = [(f"{key} {k}", v) for k, v in value.items()] if isinstance(value, dict) else [(key, value)]
        for name, item in entries:
            if isinstance(item, list):
                if not item or len(item) > 20 or not all(_scalar(v) for v in item):
                    continue
                item = ", ".join(str(v) for v in item)
            elif item is None or isinstance(item, dict):
                continue
            rows.append([name.replace("_", " "), _format(item)])
    return _table(["setting", "value"], rows, cls="settings")


def _figure(uri: str, alt: str, caption: str, id: str) -> str:
    return (
        f'<figure class="plot" id="{id}"><img src="{uri}" alt="{_e(alt)}" width="720">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _evaluation(evaluation: dict[str, Any] | None, number: int) -> str:
    """The best model's confusion matrix and a few misclassified test examples."""
    if not evaluation:
        return ""
    classes, confusion = evaluation["classes"], evaluation["confusion"]
    parts = [
        f"<h3>Confusion matrix of the best model</h3><p>{_e(evaluation['model'])}: accuracy "
        f"{evaluation['accuracy']:.3f} on {sum(map(sum, confusion))} test examples. Rows: true class; columns: "
        "predicted; shading: share of the row.</p>"
    ]
    rows = []
    for i, row in enumerate(confusion):
        total = max(1, sum(row))
        cells: list[Any] = [("raw", _e(classes[i]), "")]
        for j, count in enumerate(row):
            share = count / total
            colour = "31,111,180" if i == j else "209,73,91"
            text = "#fff" if share > 0.55 else "#1d232a"
            cells.append(("raw", str(count), f' style="background:rgba({colour},{share:.2f});color:{text}"'))
        rows.append(cells)
    parts.append(_table(["true \\ predicted", *classes], rows, cls="confusion", id=f"confusion-{number}"))
    examples = evaluation.get("misclassified") or []
    if examples:
        parts.append(f'<h3>Misclassified test examples</h3><div class="examples" id="examples-{number}">')
        for example in examples:
            if "thumbnail" in example:
                if not str(example["thumbnail"]).startswith("data:image/"):  # the page loads nothing from outside
                    raise ValueError(  # named with its record by render_report
                        f"a misclassified example's thumbnail is not a data:image/ URI: {example['thumbnail']!r:.80}"
                    )
                shown = f'<img src="{_e(example["thumbnail"])}" alt="test example {example["index"]}">'
            else:
                shown = f"<blockquote>{_e(example.get('text', ''))}</blockquote>"
            parts.append(
                f"<figure>{shown}<figcaption>#{example['index']}: <span class=good>{_e(example['true'])}</span>"
                f" taken for <span class=bad>{_e(example['predicted'])}</span></figcaption></figure>"
            )
        parts.append("</div>")
    return "".join(parts)


def _curve_section(record: dict[str, Any], number: int) -> str:
    from .plot import curve_figure, figure_data_uri

    methods, ks = record["methods"], record["labels_per_class"]
    n_classes = record.get("n_classes") or len(record.get("classes", [])) or 1
    by_k = {(g["method"], g["k"]): g for g in record.get("gains", [])}
    saved = {(s["method"], s["k"]): s for s in record.get("labels_saved", [])}
    transfer = [m["name"] for m in methods if m.get("role") != "baseline"]
    parts = [
        f"<h2>Learning curve: {_e(record.get('dataset'))}</h2>",
        f"<p>{len(ks)} label budgets × {len(record.get('seeds', []))} seeds × {len(methods)} methods; "
        f"{_e(record.get('interval', '95% interval'))}.</p>",
    ]
    middle = [s for s in record.get("labels_saved", []) if s["k"] == ks[len(ks) // 2]]
    for entry in middle:
        parts.append(
            f"<p class=verdict>With {entry['k']} labels per class, {_e(entry['method'])} reaches "
            f"{entry['accuracy']:.3f}; {_e(describe_labels_saved(entry))} ({n_classes} classes).</p>"
        )
    caption = "Accuracy against labelled examples per class; shaded: 95% interval; dashed: target-only baselines."
    parts.append(_figure(figure_data_uri(curve_figure(record)), "learning curve", caption, f"plot-{number}"))
    header = ["k", "labels"] + [m["label"] for m in methods]
    for name in transfer:
        header += [f"gain of {name} (points, 95% interval)", f"labels saved by {name}"]
    rows = []
    for i, k in enumerate(ks):
        row: list[Any] = [str(k), str(k * n_classes)]
        for method in methods:
            point = method["points"][i]
            row.append(("raw", f"{point['accuracy']:.3f}<br><small>{_interval(point['ci95'])}</small>", " class=num"))
        for name in transfer:
            gain = by_k.get((name, k))
            if gain:
                verdict = "good" if gain["ci95"][0] > 0 else "bad" if gain["ci95"][1] < 0 else ""
                text = (
                    f"<span class='{verdict}'>{_points(gain['gain'])}</span> <small>({_points(gain['ci95'][0])} to "
                    f"{_points(gain['ci95'][1])}) over {_e(gain['against'])}</small>"
                )
                row.append(("raw", text, ""))
            else:
                row.append("-")
            row.append(describe_labels_saved(saved[(name, k)]) if (name, k) in saved else "-")
        rows.append(row)
    parts.append("<h3>Comparison</h3>" + _table(header, rows, cls="comparison", id=f"table-{number}"))
    parts.append(_evaluation(record.get("evaluation"), number))
    keys = ["dataset", "modality", "backbone", "layer", "image_size", "C", "scratch_steps", "labels_per_class"]
    keys += ["seeds", "strategies", "test_size", "classes", "created"]
    parts.append("<h3>Settings</h3>" + _settings(record, keys))
    time_rows = []
    extraction = record.get("extraction")
    if extraction:
        how = "read from the cache" if extraction.get("from_cache") else f"{extraction['items_per_second']:.0f} items/s"
        time_rows.append(
            [
                f"feature extraction ({extraction['n_train']} train + {extraction['n_test']} test, once)",
                _seconds(extraction["seconds"]),
                how,
            ]
        )
    for method in methods:
        fit = sum(sum(p["fit_seconds_per_seed"]) for p in method["points"])
        evaluate = sum(sum(p["evaluate_seconds_per_seed"]) for p in method["points"])
        what = f"{method['label']}: fit / evaluate, summed over all k and seeds"
        time_rows.append([what, _seconds(fit), _seconds(evaluate)])
    if record.get("wall_seconds") is not None:
        jobs = f", {record['jobs']} fits at a time" if record.get("jobs", 1) > 1 else ""
        threads = f"{record.get('threads')} threads, {record.get('cpu_count')} CPUs{jobs}"
        time_rows.append(["the whole command", _seconds(record["wall_seconds"]), threads])
    if record.get("load_average"):
        load = ", ".join(f"{value:g}" for value in record["load_average"])
        time_rows.append(["system load average at the end (1, 5, 15 min), this run included", load, ""])
    parts.append("<h3>Time spent</h3>" + _table(["what", "time", ""], time_rows, cls="times"))
    return "".join(parts)


def _fit_methods(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The methods of a fit record; records written before ``methods`` existed give what they have."""
    if record.get("methods"):
        return record["methods"]
    methods = [{"name": record.get("strategy"), "label": record.get("strategy"), "role": "transfer",
                "accuracy": record["accuracy"], "accuracy_per_seed": record.get("accuracy_per_seed", [])}]  # fmt: skip
    for name, accuracy in (record.get("baselines") or {}).items():
        per_seed = (record.get("baselines_per_seed") or {}).get(name, [])
        methods.append(
            {"name": name, "label": name, "role": "baseline", "accuracy": accuracy, "accuracy_per_seed": per_seed}
        )
    return methods


def _fit_section(record: dict[str, Any], number: int) -> str:
    from .plot import figure_data_uri, methods_figure

    k = record.get("labels_per_class")
    methods = _fit_methods(record)
    parts = [
        f"<h2>Fit: {_e(record.get('dataset'))}, {'all labels' if k is None else f'{k} labels per class'}</h2>",
    ]
    if record.get("gain") is not None and len(record.get("gain_ci95") or ()) == 2:
        low, high = record["gain_ci95"]
        parts.append(
            f"<p class=verdict>Gain over the best target-only baseline ({_e(record.get('gain_against'))}): "
            f"<b>{_points(record['gain'])} points</b> (95% interval {_points(low)} to {_points(high)} over "
            f"{len(record.get('seeds', []))} seeds and {record.get('test_size')} test examples): "
            f"{_e(record.get('verdict'))}. The saved model: {_e(record.get('returned'))}.</p>"
        )
    if all("ci95" in m for m in methods):
        caption = "Test accuracy of each method; line: 95% interval over seeds and test examples."
        parts.append(_figure(figure_data_uri(methods_figure(record)), "accuracy of each method", caption,
                             f"plot-{number}"))  # fmt: skip
    rows = []
    for method in methods:
        per_seed = method.get("accuracy_per_seed") or []
        rows.append(
            [
                method.get("label") or method.get("name"),
                method.get("role", ""),
                f"{method['accuracy']:.3f}",
                _interval(method["ci95"]) if "ci95" in method else "-",
                ", ".join(f"{a:.3f}" for a in per_seed),
                _seconds(method.get("fit_seconds")),
                _seconds(method.get("evaluate_seconds")),
            ]
        )
    header = ["method", "", "accuracy", "95% interval", "per seed", "fit (per seed)", "evaluate"]
    parts.append("<h3>Comparison</h3>" + _table(header, rows, cls="comparison", id=f"table-{number}"))
    parts.append(_evaluation(record.get("evaluation"), number))
    keys = ["dataset", "backbone", "strategy", "auto", "labels_per_class", "seeds", "n_train", "test_size"]
    keys += ["image_size", "layer", "classes", "created"]
    parts.append("<h3>Settings</h3>" + _settings(record, keys))
    time_rows = [["transfer: fit (per seed)", _seconds(record.get("fit_seconds"))]]
    time_rows.append(["transfer: evaluate (per seed)", _seconds(record.get("evaluate_seconds"))])
    if record.get("extract_images_per_second"):
        cached = " (features read from the cache)" if record.get("features_from_cache") else ""
        time_rows.append(["feature extraction", f"{record['extract_images_per_second']:.0f} items/s{cached}"])
    for name, value in (record.get("baseline_fit_seconds") or {}).items():
        time_rows.append([f"{name}: fit (per seed)", _seconds(value)])
    if record.get("wall_seconds") is not None:
        time_rows.append(["the whole command", _seconds(record["wall_seconds"])])
    parts.append("<h3>Time spent</h3>" + _table(["what", "time"], time_rows, cls="times"))
    return "".join(parts)


def _adapt_section(record: dict[str, Any], number: int) -> str:
    """``adapt --json``: every method against source-only, and the choice among them with its criterion."""
    methods, selected = record["methods"], record["selected"]
    scored = "accuracy" in selected  # a target without labels scores nothing
    parts = [f"<h2>adapt: {_e(record['source'])} → {_e(record['target'])}</h2>"]
    parts.append(
        "<h3>Settings</h3>"
        + _settings(record, ["source", "target", "representation", "target_has_labels"])
        + "".join(f"<p>{_e(note)}</p>" for note in record.get("notes", []))
    )
    before = record["distance_before"]
    criterion = selected.get("criterion", "reverse validation")  # records before labelled choices had none
    header = ["method", "weight", "accuracy", "gain vs source-only (95%)"] if scored else ["method", "weight"]
    header += ["predictions changed", "A-distance after", f"selection error ({criterion})", "time"]
    rows = []
    for name, row in methods.items():
        weights = sorted({w for w in row["weights"] if w is not None})
        cells: list[Any] = [name, "/".join(f"{w:g}" for w in weights) or "-"]
        if scored:
            gain = row.get("gain")
            cells.append(f"{row['accuracy']:.3f} ± {row['accuracy_std']:.3f}")
            cells.append(
                "—" if gain is None else f"{_points(gain['gain'])} ({_points(gain['low'])} to {_points(gain['high'])})"
            )
        changed = row.get("changed")
        after = row.get("distance_after")
        cells += [
            "-" if not changed else f"{100 * sum(changed) / len(changed):.1f} %",
            "n/a" if after is None else f"{after['a_distance']:.2f}",
            f"{sum(row['reverse_error']) / len(row['reverse_error']):.3f}",
            _seconds(sum(row["seconds"])),
        ]
        rows.append(cells)
    parts.append(
        f"<h3>Methods</h3><p>Domain distance before adaptation: MMD² {before['mmd']:.4f}, "
        f"A-distance {before['a_distance']:.2f}.</p>" + _table(header, rows, cls="comparison", id=f"table-{number}")
    )
    choices = ", ".join(c["method"] + ("" if c["weight"] is None else f" {c['weight']:g}") for c in selected["choices"])
    if scored:
        gain = selected["gain"]
        outcome = (
            f" → {selected['accuracy']:.3f} ± {selected['accuracy_std']:.3f}, {_points(gain['gain'])} points over "
            f"source-only ({_points(gain['low'])} to {_points(gain['high'])}): {gain['verdict']}"
        )
    else:
        outcome = " (the target has no labels" + (": unverified)" if criterion == "reverse validation" else ")")
    parts.append(f"<h3>Choice</h3><p class=verdict>By {_e(criterion)}, one per seed: {_e(choices)}{_e(outcome)}.</p>")
    if "oracle" in record:
        parts.append(
            f"<p>Target oracle (trained on the target's labels, a ceiling): {record['oracle']['accuracy']:.3f}.</p>"
        )
    if "warning" in selected:
        parts.append(f"<p class=bad>warning: {_e(selected['warning'])}</p>")
    return "".join(parts)


def _subject(record: dict[str, Any]) -> str:
    """What a record is about: its data set, the source → target pair, the two compared sets, or the zoo entry."""
    if record.get("dataset"):
        return str(record["dataset"])
    for first, second, joint in (("source", "target", " → "), ("first", "second", " vs ")):
        if record.get(first) and record.get(second):
            return f"{record[first]}{joint}{record[second]}"
    return str(record.get("target") or record.get("name") or "")


def _transfer_lr_section(record: dict[str, Any], number: int) -> str:
    """``transfer-lr --json``: the table the command prints, accuracies and the gain over the better baseline."""
    fields = ("accuracy_per_seed", "gain", "lambdas", "best_baseline")
    if not all(isinstance(row, dict) and all(f in row for f in fields) for row in record.get("rows") or [None]):
        return _generic_section(record, "transfer-lr", number)  # a partial record: shown as what it holds
    parts = [f"<h2>transfer-lr: {_e(_subject(record))}</h2>"]
    parts.append("<h3>Settings</h3>" + _settings(record, ["source", "target", "representation"]))
    header = ["k", "source-only", "target-only", "transfer LR", "λ (per seed)", "gain vs better baseline (95%)"]
    rows, warnings = [], []
    for row in record["rows"]:
        accuracy, gain = row["accuracy_per_seed"], row["gain"]
        interval = f"({_points(gain['low'])} to {_points(gain['high'])})"
        rows.append(
            [
                str(row["k"]),
                *(mean_std(accuracy[method]) for method in ("source-only", "target-only", "transfer")),
                ", ".join(f"{lam:g}" for lam in row["lambdas"]),
                f"{_points(gain['gain'])} {interval} vs {row['best_baseline']}: {gain['verdict']}",
            ]
        )
        if row.get("negative_transfer"):
            warnings.append(f"negative transfer at k={row['k']}: {_points(gain['gain'])} points {interval}")
    parts.append(
        "<h3>Comparison</h3><p>Accuracy: mean ± standard deviation over seeds (labelled draws).</p>"
        + _table(header, rows, cls="comparison", id=f"table-{number}")
    )
    parts += [f"<p class=bad>{_e(warning)}</p>" for warning in warnings]
    return "".join(parts)


def _generic_section(record: dict[str, Any], kind: str, number: int) -> str:
    """Any other record: its settings, then each list of objects (or object of objects) as a table."""
    parts = [f"<h2>{_e(kind)}: {_e(_subject(record))}</h2>"]
    parts.append("<h3>Settings</h3>" + _settings(record))
    for key, value in record.items():
        rows: list[tuple[str, dict[str, Any]]] = []
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows = [(str(i + 1), v) for i, v in enumerate(value)]
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            rows = [(str(name), v) for name, v in value.items()]
        if not rows:
            continue
        columns = [c for c in dict.fromkeys(c for _, row in rows for c in row) if _scalar(rows[0][1].get(c))][:10]
        body = [[name, *[_format(row.get(c)) for c in columns]] for name, row in rows]
        parts.append(f"<h3>{_e(key.replace('_', ' '))}</h3>" + _table(["", *columns], body, id=f"table-{number}"))
    return "".join(parts)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def render_report(records: Sequence[tuple[str, dict[str, Any]]], *, title: str | None = None) -> str:
    """The HTML page of ``records``.

    Parameters
    ----------
    records : sequence of (str, dict)
        Where each record came from (shown on the page) and the record.
    title : str, optional
        Page title (default from the records).

    Returns
    -------
    str
        A complete HTML5 document that references nothing outside itself.

    Raises
    ------
    DataError
        When there is no record, or one is not a run record the page can show
        (:func:`~transferkit.report.records.check_record`).
    """
    if not records:
        raise DataError("a report needs at least one run record")
    sections, links = [], []
    for number, (source, record) in enumerate(records, start=1):
        kind = check_record(record, source)
        try:
            if kind == "curve":
                body = _curve_section(record, number)
            elif kind == "fit":
                body = _fit_section(record, number)
            elif kind == "adapt":
                body = _adapt_section(record, number)
            elif kind == "transfer-lr":
                body = _transfer_lr_section(record, number)
            else:
                body = _generic_section(record, kind, number)
        except TransferkitError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            # Records are files people edit; a part check_record does not look into is still named, not a traceback.
            problem = (
                f"field {error.args[0]!r} is missing"
                if isinstance(error, KeyError)
                else f"a field is malformed: {error}"
            )
            raise DataError(f"{kind} record {source!r} cannot be shown: {problem}") from error
        sections.append(
            f'<section class="run" id="run-{number}">{body}<p class=source>record: {_e(source)}</p></section>'
        )
        links.append(f'<a href="#run-{number}">{_e(kind)}: {_e(_subject(record) or source)}</a>')
    title = title or "transferkit report: " + ", ".join(
        f"{record_kind(r)} {r.get('dataset') or ''}".strip() for _, r in records
    )
    from .. import __version__

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{len(records)} run record{'s' * (len(records) != 1)}, written "
        f"{_e(time.strftime('%Y-%m-%d %H:%M'))}</p><nav>{''.join(links)}</nav></header>"
        f"<main>{''.join(sections)}</main>"
        f"<footer>transferkit {__version__}. This page is self-contained: no scripts, nothing loaded from "
        "outside.</footer></body></html>\n"
    )


def write_report(sources: Sequence[str | os.PathLike], out: str | os.PathLike, *, title: str | None = None) -> Path:
    """Write the report of the run records at ``sources`` (run folders or JSON files) to ``out``.

    Parameters
    ----------
    sources : sequence of path
        Run folders (holding ``run.json``) or record files.
    out : path
        The HTML file to write (atomically; its folder is created).
    title : str, optional
        Page title.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    DataError
        When a source holds no readable record.
    """
    records = [(str(source), load_record(source)) for source in sources]
    page = render_report(records, title=title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda temporary: Path(temporary).write_text(page, encoding="utf-8"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)  # the temporary file was private; the page is meant to be shared
    return out
