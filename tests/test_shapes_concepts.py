"""Concept obstacles on the shipped shapes model: revert-and-resample against rejection with
the same model (the exact constrained law), at CI size, with an exact ledger and two
statistical checks (``benchmarks/shapes_fidelity.py``'s :func:`measure`, whose full-size
numbers are in docs/shapes.md)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from scipy.stats import chi2_contingency

ROOT = Path(__file__).resolve().parents[1]
N, STEPS = 64, 16


@pytest.fixture(scope="module")
def fidelity():
    spec = importlib.util.spec_from_file_location("shapes_fidelity", ROOT / "benchmarks" / "shapes_fidelity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.measure("no red objects", "a circle", n=N, steps=STEPS, modes=("revert",), permutations=50)


def _counts(row: dict) -> list[int]:
    return [round(share * row["objects"]) for share in row["colour"].values()]


def test_revert_ledger_is_exact(fidelity):
    rev = fidelity["modes"]["revert"]
    assert rev["delivered"] == N  # revert never drops a path
    assert rev["obstacle_calls"] >= N * (STEPS + 1)  # every state of every path checked, charged
    # a redrawn step costs one more field evaluation (two image-forwards with guidance), except
    # a redrawn last step: it lands at t = 0, where x̂0 = x needs none
    assert rev["reverts"] > rev["reverts_at_t0"] >= 0
    assert rev["nfe_per_image"] * N == 2 * (N * STEPS + rev["reverts"] - rev["reverts_at_t0"])
    rej = fidelity["rejection"]
    assert rej["nfe_per_image"] == pytest.approx(2 * STEPS / rej["acceptance"])
    assert rej["within_q"] == 0.0 and rej["delivered"] == round(rej["acceptance"] * N)


def test_revert_tries_are_charged_as_obstacle_checks(fidelity):
    rev = fidelity["modes"]["revert"]
    assert rev["obstacle_calls"] == N * (STEPS + 1) + rev["reverts"]  # each try is one more CNN check


def test_revert_avoids_the_concept_like_rejection(fidelity):
    """1. The checker finds red in fewer of revert's images than of plain samples'
    (one-sided two-proportion z-test, p < 0.01). 2. The colours of the objects revert
    delivers are not distinguishable from rejection's (χ² homogeneity, p > 0.05), while
    the same test tells plain samples from rejection's (p < 0.05): it has the power to.
    Measured: plain shows red in 16 of 64 images, revert in 1 (z-test p = 5e-5); χ² p =
    0.85 for revert against rejection, 0.008 for plain against rejection."""
    plain, rev, rej = fidelity["plain"], fidelity["modes"]["revert"], fidelity["rejection"]
    p1, p2 = plain["shows_concept"], rev["shows_concept"]
    pool = (p1 + p2) / 2
    z = (p1 - p2) / math.sqrt(pool * (1 - pool) * 2 / N)
    assert 0.5 * math.erfc(z / math.sqrt(2)) < 0.01
    assert rej["shows_concept"] == 0.0

    def p_value(a: dict, b: dict) -> float:
        table = [[x, y] for x, y in zip(_counts(a), _counts(b)) if x + y > 0]
        return float(chi2_contingency(list(zip(*table)))[1])

    assert p_value(rev, rej) > 0.05
    assert p_value(plain, rej) < 0.05
