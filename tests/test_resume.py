"""A fine-tuning run killed with SIGKILL mid-epoch and resumed ends with bitwise the weights of an unbroken run;
restore_rng, which resuming calls, refuses malformed RNG states with one message."""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from transferkit.errors import TransferkitError
from transferkit.training.checkpoint import capture_rng, restore_rng, save_checkpoint
from transferkit.training.checkpoint import load_checkpoint as read_checkpoint

FIT = [
    "fit",
    "digits",
    "--strategy",
    "finetune",
    "--image-size",
    "32",
    "--labels-per-class",
    "12",
    "--epochs",
    "3",
    "--batch-size",
    "4",
    "--test-size",
    "40",
    "--no-baseline",
    "--quiet",
    "--seed",
    "3",
    "--seeds",
    "1",
]


def _cli(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # same thread count in every run: same float sums
    return subprocess.Popen(
        [sys.executable, "-m", "transferkit.cli", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path):
    unbroken = _cli(*FIT, "--out", str(tmp_path / "unbroken"))
    killed = _cli(*FIT, "--out", str(tmp_path / "killed"))
    index = tmp_path / "killed" / "checkpoints" / "checkpoint.json"
    deadline = time.monotonic() + 600
    while not index.is_file():  # wait for the end of the first epoch
        assert killed.poll() is None, killed.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint after 10 minutes"
        time.sleep(0.02)
    time.sleep(0.3)  # well inside epoch 2 (an epoch of 30 steps takes seconds)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert json.loads(index.read_text())["epoch"] == 0  # epoch 2 had not finished
    assert not (tmp_path / "killed" / "model").exists()

    resumed = _cli(*FIT, "--resume", str(tmp_path / "killed"), "--out", str(tmp_path / "resumed"))
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err.decode()
    unbroken.communicate(timeout=600)
    assert unbroken.returncode == 0

    record = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert record["resumed_from_epoch"] == 0 and len(record["epochs"]) == 3
    reference = load_file(str(tmp_path / "unbroken" / "model" / "weights.safetensors"))
    continued = load_file(str(tmp_path / "resumed" / "model" / "weights.safetensors"))
    assert reference.keys() == continued.keys()
    different = [key for key in reference if not (reference[key] == continued[key]).all()]
    assert not different, different[:5]
    # and the run did train: the weights moved away from the pre-trained ones
    first = json.loads((tmp_path / "resumed" / "run.json").read_text())["epochs"]
    assert first[-1]["loss"] < first[0]["loss"]


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.random(3).tolist(), [random.random() for _ in range(3)]  # noqa: NPY002


def test_restore_rng_replays_the_same_draws_after_a_checkpoint_round_trip(tmp_path):
    np.random.standard_normal()  # noqa: NPY002 (a cached gaussian, so has_gauss is 1 in the state)
    random.gauss(0, 1)
    save_checkpoint(
        tmp_path,
        epoch=0,
        model_state={"w": torch.zeros(1)},
        optimizer_state={"state": {}, "param_groups": []},
        scheduler_state={},
    )
    expected = _draws()
    found = read_checkpoint(tmp_path)
    restore_rng(found["rng_tensors"], found["rng_meta"])
    assert _draws() == expected


def _malformed(change):
    tensors, meta = capture_rng()
    meta = copy.deepcopy(meta)
    change(tensors, meta)
    return tensors, meta


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, m: t.pop("rng.numpy"), r"tensors must be a dict holding 'rng.torch' and 'rng.numpy'.*Got a dict"),
        (lambda t, m: m.pop("python"), r"meta must be a dict holding 'numpy' and 'python'.*Got a dict with keys"),
        (
            lambda t, m: t.update({"rng.torch": torch.zeros(5056)}),
            r"'rng.torch'\] must be a 1-D uint8 tensor .*Got a tensor of dtype float32, shape \(5056,\), on cpu",
        ),
        (
            lambda t, m: t.update({"rng.torch": torch.zeros(10, dtype=torch.uint8)}),
            r"tensors\['rng.torch'\] must be .* of \d+ bytes.*Got a tensor of dtype uint8, shape \(10,\)",
        ),
        (
            lambda t, m: t.update({"rng.numpy": t["rng.numpy"][:100]}),
            r"'rng.numpy'\] must be a 1-D int64 tensor on cpu of 624 values.*Got a tensor of dtype int64, shape \(100,",
        ),
        (
            lambda t, m: t.update({"rng.numpy": t["rng.numpy"].float()}),
            r"tensors\['rng.numpy'\] must be a 1-D int64 .*Got a tensor of dtype float32",
        ),
        (
            lambda t, m: t["rng.numpy"].__setitem__(0, -1),
            r"tensors\['rng.numpy'\] .* in \[0, 2\*\*32\).*with values from -1 to",
        ),
        (lambda t, m: m.update({"numpy": m["numpy"][:3]}), r"meta\['numpy'\] must be a list of 4 values \[kind, pos"),
        (
            lambda t, m: m["numpy"].__setitem__(0, "PCG64"),
            r"meta\['numpy'\]\[0\] \(kind\) must be 'MT19937'. Got 'PCG64'",
        ),
        (lambda t, m: m["numpy"].__setitem__(1, 700), r"meta\['numpy'\]\[1\] \(position\) must be an int from 0 to"),
        (lambda t, m: m["numpy"].__setitem__(2, "yes"), r"\(has_gauss\) must be 0 or 1. Got 'yes' \(str\) instead"),
        (
            lambda t, m: m.update({"python": "state"}),
            r"meta\['python'\] must be a list of 3 values .*Got 'state' \(str\)",
        ),
        (lambda t, m: m["python"].__setitem__(0, 2.5), r"meta\['python'\]\[0\] \(version\) must be 3. Got 2.5"),
        (
            lambda t, m: m["python"].__setitem__(1, m["python"][1][:10]),
            r"\(internal_state\) must be a list of 624 ints .*Got a list of 10 values instead",
        ),
        (lambda t, m: m["python"][1].__setitem__(624, 625), r"\(internal_state\) must be .* position from 0 to 624"),
        (lambda t, m: m["python"].__setitem__(2, "x"), r"\(gauss\) must be null or a float. Got 'x' \(str\)"),
    ],
)
def test_restore_rng_names_a_malformed_state_and_changes_no_generator(change, message):
    tensors, meta = _malformed(change)
    before = capture_rng()
    with pytest.raises(TransferkitError, match=message):
        restore_rng(tensors, meta)
    after = capture_rng()
    assert torch.equal(before[0]["rng.torch"], after[0]["rng.torch"]) and before[1] == after[1]


@pytest.mark.parametrize(("tensors", "meta"), [(None, {}), ({}, [1, 2]), ("rng", "meta")])
def test_restore_rng_refuses_arguments_that_are_not_dicts(tensors, meta):
    with pytest.raises(TransferkitError, match=r"The RNG state (tensors|meta) must be a dict holding .* instead\."):
        restore_rng(tensors, meta)
