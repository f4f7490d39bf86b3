"""The label-free choice among fitted candidates: the one-standard-error rule, and mSDA's eligibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transferkit.adaptation.run import (
    Candidate,
    choose_candidates,
    not_chosen_automatically,
    select_adaptation,
)
from transferkit.errors import UnknownNameError


def _candidate(method: str, weight: float | None, misses: np.ndarray) -> Candidate:
    misses = np.asarray(misses, dtype=bool)
    return Candidate(method, weight, float(misses.mean()), 0.0, None, misses)


def _misses(n: int, wrong: list[int]) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[wrong] = True
    return out


def test_one_standard_error_rule_prefers_source_only_when_a_deep_method_leads_within_noise():
    # source-only misses examples 0-29, dann misses 0-27 and 100: error 0.30 vs 0.29 on 100 examples,
    # a lead of one example while the paired differences' standard error is about 0.017.
    so = _candidate("source-only", None, _misses(100, list(range(30))))
    dann = _candidate("dann", 0.3, _misses(100, [*range(28), 99]))
    per_method, best = choose_candidates([so, dann], "one-standard-error")
    assert best is so and per_method["dann"] is dann
    _, lowest = choose_candidates([so, dann], "lowest")
    assert lowest is dann


def test_one_standard_error_rule_keeps_a_clear_winner():
    so = _candidate("source-only", None, _misses(100, list(range(40))))
    dann = _candidate("dann", 1.0, _misses(100, list(range(10))))
    _, best = choose_candidates([so, dann], "one-standard-error")
    assert best is dann


def test_one_standard_error_rule_prefers_shallow_over_deep_and_the_smaller_weight():
    # Different examples missed, so the paired differences are noisy: 0.110 and 0.105 are within one
    # standard error (about 0.02) of each other and of mmd's 0.100; source-only's 0.30 is not.
    so = _candidate("source-only", None, _misses(200, list(range(60))))
    deep = _candidate("mmd", 1.0, _misses(200, list(range(100, 120))))
    shallow_small = _candidate("self-training", 0.3, _misses(200, list(range(22))))
    shallow_big = _candidate("self-training", 1.0, _misses(200, list(range(10, 31))))
    per_method, best = choose_candidates([so, deep, shallow_small, shallow_big], "one-standard-error")
    assert per_method["self-training"] is shallow_small  # weights ascend: the smaller one within noise
    assert best is shallow_small
    per_method, best = choose_candidates([so, deep, shallow_small, shallow_big], "lowest")
    assert per_method["self-training"] is shallow_big and best is deep


def test_excluded_methods_keep_their_weight_but_are_never_chosen():
    so = _candidate("source-only", None, _misses(100, list(range(50))))
    msda = _candidate("msda", 1.0, _misses(100, list(range(5))))
    for rule in ("one-standard-error", "lowest"):
        per_method, best = choose_candidates([so, msda], rule, exclude={"msda": "why"})
        assert per_method["msda"] is msda and best is so


def test_unknown_rule_names_the_value():
    so = _candidate("source-only", None, _misses(10, [1]))
    with pytest.raises(UnknownNameError, match="selection rule.*'lowset'.*did you mean 'lowest'"):
        choose_candidates([so], "lowset")


def test_msda_is_left_out_of_the_choice_on_signed_features_only():
    rng = np.random.default_rng(0)
    signed = rng.normal(size=(30, 4))
    assert set(not_chosen_automatically(signed, np.abs(signed))) == {"msda"}
    assert not_chosen_automatically(np.abs(signed), np.abs(signed) + 1) == {}


def test_select_adaptation_records_rule_and_left_out_methods_and_misses():
    rng = np.random.default_rng(3)
    ys = np.repeat([0, 1], 60)
    xs = rng.normal(size=(120, 6)) + ys[:, None]  # (120, 6), signed
    xt = rng.normal(size=(80, 6)) + 0.5
    selection = select_adaptation(["source-only", "msda"], xs, ys, xt, random_state=0)
    assert selection.rule == "one-standard-error"
    assert set(selection.not_chosen) == {"msda"} and "negative" in selection.not_chosen["msda"]
    assert selection.best.method == "source-only"
    summary = selection.to_dict()
    assert summary["rule"] == "one-standard-error" and set(summary["not_chosen"]) == {"msda"}
    for candidate in selection.candidates:
        assert candidate.misses.shape == (len(selection.validation_index),)
        assert candidate.reverse_error == pytest.approx(candidate.misses.mean())
    with pytest.raises(UnknownNameError, match="selection rule"):
        select_adaptation(["source-only"], xs, ys, xt, rule="best")


def test_cli_adapt_says_when_msda_is_scored_but_not_eligible(tmp_path, capsys):
    from transferkit.cli import main

    rng = np.random.default_rng(0)
    y = np.array(["cat", "dog"] * 60)
    signal = (y == "dog")[:, None] * np.r_[2.0, 0, 0, 0]  # (120, 4): class on the first axis, signed features
    np.savez(tmp_path / "source.npz", X=rng.normal(size=(120, 4)) + signal, y=y)
    np.savez(tmp_path / "target.npz", X=rng.normal(size=(120, 4)) + signal + np.r_[0, 2.0, 0, 0], y=y)
    argv = ["adapt", "--source", str(tmp_path / "source.npz"), "--target", str(tmp_path / "target.npz")]
    argv += ["--method", "msda", "--seeds", "1", "--json", str(tmp_path / "adapt.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "msda was scored but not eligible for the choice: features take negative values" in out
    record = json.loads((tmp_path / "adapt.json").read_text())
    assert set(record["selected"]["not_chosen"]) == {"msda"}
    assert record["selected"]["choices"][0]["method"] == "source-only"
    assert "msda" in record["methods"]


def test_the_smaller_weight_is_preferred_whatever_order_the_weights_were_tried_in():
    big = _candidate("self-training", 1.0, _misses(200, list(range(10, 31))))
    small = _candidate("self-training", 0.3, _misses(200, list(range(22))))
    for order in ([big, small], [small, big]):
        per_method, _ = choose_candidates(order, "one-standard-error")
        assert per_method["self-training"] is small


def test_the_candidates_show_progress_on_a_terminal_and_not_when_quiet(monkeypatch, capsys):
    import transferkit._progress as progress_module

    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 1.0
    ys = np.arange(40) % 2
    monkeypatch.setattr(progress_module.sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(progress_module, "_QUIET", False)
    select_adaptation(["source-only", "shallow-coral"], xs, ys, xt, random_state=3)
    assert "adaptation candidates, seed 3" in capsys.readouterr().err
    with progress_module.quiet_unless(False):
        select_adaptation(["source-only", "shallow-coral"], xs, ys, xt, random_state=3)
    assert "adaptation candidates" not in capsys.readouterr().err
