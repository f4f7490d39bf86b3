"""A fine-tuning run killed with SIGKILL mid-epoch and resumed ends with bitwise the weights of an unbroken run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.numpy import load_file

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
