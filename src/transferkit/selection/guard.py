"""How much did transfer help, and how sure are we: the gain over target-only training.

The negative-transfer guard compares a transfer model with the best target-only baseline on
the same test examples, over several labelled draws (seeds). Two things make the measured gain
uncertain, and the interval accounts for both:

- *which labelled examples were drawn* — the spread of the per-seed gains, ``s² / S``;
- *which test examples were scored* — with ``D_i`` the per-example difference of correctness
  averaged over seeds, ``var(D) / n``.

The interval is ``mean ± t · sqrt(s²/S + var(D)/n)``, with the degrees of freedom of the
Welch–Satterthwaite approximation for a sum of two variance estimates. With one seed only the
test-example term is left (the spread over draws is then unknown, and the verdict says so).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from ..errors import DataError

__all__ = ["GainEstimate", "transfer_gain"]


@dataclass(frozen=True)
class GainEstimate:
    """The gain of transfer over a baseline, in accuracy (fraction, not points).

    Attributes
    ----------
    gain : float
        Mean over seeds of accuracy(transfer) − accuracy(baseline).
    low, high : float
        Two-sided confidence interval of the gain (``level``, default 95%).
    per_seed : list of float
        The gain of each seed.
    n_seeds, n_test : int
    level : float
    verdict : str
        ``"transfer helped"`` (low > 0), ``"negative transfer"`` (high < 0) or
        ``"no clear difference"``.
    """

    gain: float
    low: float
    high: float
    per_seed: list[float]
    n_seeds: int
    n_test: int
    level: float

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "transfer helped"
        if self.high < 0:
            return "negative transfer"
        return "no clear difference"

    @property
    def negative(self) -> bool:
        """True when transfer is worse than the baseline with confidence."""
        return self.high < 0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict, with ``verdict`` added."""
        return {**asdict(self), "verdict": self.verdict}


def _as_matrix(correct: Any, name: str) -> np.ndarray:
    matrix = np.asarray(correct, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise DataError(f"{name} must be (seeds, test examples) of 0/1 correctness; got shape {matrix.shape}")
    return matrix  # (S, n)


def transfer_gain(transfer_correct: Any, baseline_correct: Any, *, level: float = 0.95) -> GainEstimate:
    """The gain of transfer over a baseline with a confidence interval over seeds and test examples.

    Parameters
    ----------
    transfer_correct, baseline_correct : array-like of shape (S, n) or (n,)
        Whether each of the ``n`` test examples was classified correctly, for each of ``S`` seeds
        (labelled draws); row ``s`` of both must come from the same draw and the same test set.
    level : float
        Confidence level of the interval.

    Returns
    -------
    GainEstimate
        The interval is Welch-Satterthwaite's t-interval, kept within [-1, 1], the most two
        accuracies can differ by. A nonzero difference that is the same on every example and seed
        gets one pseudo-example each way before its variance is taken, so that a handful of test
        examples cannot give a certain verdict.

    Raises
    ------
    DataError
        When the shapes differ or are not (seeds, test examples).
    """
    a = _as_matrix(transfer_correct, "transfer_correct")  # (S, n)
    b = _as_matrix(baseline_correct, "baseline_correct")  # (S, n)
    if a.shape != b.shape:
        raise DataError(
            f"transfer_correct has shape {a.shape} but baseline_correct has {b.shape}; "
            "expected the same seeds and test examples"
        )
    if not 0 < level < 1:
        raise DataError(f"level must be in (0, 1); got {level!r}")
    n_seeds, n_test = a.shape
    per_seed = a.mean(axis=1) - b.mean(axis=1)  # (S,)
    gain = float(per_seed.mean())
    per_example = (a - b).mean(axis=0)  # (n,)
    var_test = float(per_example.var(ddof=1)) / n_test if n_test > 1 else 0.0
    var_seed = float(per_seed.var(ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    parts = [(var_test, n_test - 1), (var_seed, n_seeds - 1)]
    if var_test + var_seed == 0.0 and gain != 0.0:
        # the same nonzero difference on every example and seed (two test examples both lost) has no spread to
        # measure its uncertainty by; one pseudo-example each way, as in Agresti & Min's paired adjustment, keeps
        # a handful of examples from giving a certain verdict
        padded = np.concatenate([per_example, [1.0, -1.0]])  # (n + 2,)
        parts[0] = (float(padded.var(ddof=1)) / len(padded), len(padded) - 1)
    total = parts[0][0] + parts[1][0]
    if total == 0.0:  # identical predictions: the difference is exactly zero
        low = high = gain
    else:
        df = total**2 / sum(v**2 / d for v, d in parts if d > 0 and v > 0)
        half = float(stats.t.ppf(0.5 + level / 2, df)) * total**0.5
        # two accuracies differ by at most 1: with few seeds and test examples the t-interval can reach past it
        low, high = max(gain - half, -1.0), min(gain + half, 1.0)
    return GainEstimate(gain, float(low), float(high), [float(g) for g in per_seed], n_seeds, n_test, level)
