"""Cell tasks of the reproduction: ``(cell, cache) -> dict`` of plain numbers.

Each runs in whichever process the executor picks (this one, or a Ray worker), loads its
backend through ``cache`` (one model per process) and returns JSON-ready numbers only.
Everything that decides a task's numbers is in the cell's config and budget, so the cell
id (a digest of them) is an honest resume key.
"""

from __future__ import annotations

import torch

from ..obstacles.field import pairwise_distance

__all__ = ["candidates", "tilted_draws", "avoidance", "REFERENCE_SEED", "reference_tilted", "reference_constrained"]

REFERENCE_SEED = 12345  # the exact reference samples, apart from every run's seed


def _problem(cfg, cache, verifiers: bool = True):
    from ..search import backend_for, build_problem

    problem = build_problem(cfg, backend=backend_for(cfg, cache), verifiers=verifiers)
    problem.trace_scores = False  # no view-only diagnostics: they would cost time, not change numbers
    return problem


def _request(cfg, cache, algorithm: str | None = None, budget: int | None = None, fit: bool = False):
    """The run request of a task (through the one runner, no view-only diagnostics)."""
    from ..search import RunRequest, backend_for

    cfg = cfg if algorithm is None else cfg.replace(algorithm=algorithm)
    return RunRequest.from_config(cfg, backend=backend_for(cfg, cache), budget=budget, fit=fit, trace_scores=False)


def _floats(values) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def candidates(cell, cache) -> dict:
    """Best-of-N with N = ``config.n`` and no cap: every candidate's search and held-out
    score, by candidate index (candidate i is the same sample alone or among N, so
    best-of-n for every n ≤ N is read off the first n)."""
    from ..search import Runner

    res = Runner(_request(cell.config, cache, "best-of-n")).run()
    cands = sorted(res.candidates, key=lambda c: tuple(c.key))
    out = {"score": _floats(c.score for c in cands), "heldout": _floats(c.heldout_score for c in cands)}
    return out | {"nfe": int(res.ledger.denoiser_nfe)}


def reference_tilted(mix, component: int, tau: float, seed: int = REFERENCE_SEED):
    """The reward-tilted mixture and a :class:`~dts_app.search.fidelity.Reference` of it
    (shares and mean log p0 over 10⁵ exact draws)."""
    from ..search.fidelity import EXACT_N, Reference, tilted_mixture

    target = tilted_mixture(mix, component, tau)
    x, _ = target.sample(EXACT_N, torch.Generator().manual_seed(seed))
    return target, Reference.of(mix, x)


def tilted_draws(cell, cache) -> dict:
    """A sampling algorithm fitted to ``cell.budget`` (soft tree search, smc): its draws
    against the exact tilted mixture ``p0·N(·; μ_c, Σ_c)^{1/τ}`` (c = ``config.target``,
    τ = ``config.temperature``)."""
    from ..search import Runner
    from ..search.fidelity import fidelity

    cfg = cell.config
    request = _request(cfg, cache, budget=int(cell.budget), fit=True)
    mix = request.problem.backend.reference_mixture()
    target, ref = reference_tilted(mix, int(cfg.target), float(cfg.temperature))
    res = Runner(request).run()
    draws = res.draws if res.draws else res.candidates
    x = torch.stack([c.x0.reshape(-1) for c in draws]).double() if draws else torch.zeros(0, mix.dim)
    exact = ref.shares
    f = fidelity(mix, x, ref)
    return {
        "mode_shares": f["mode_shares"],
        "target_shares": [float(v) for v in exact],
        "max_share_error": f["max_share_error"],
        "energy_distance": f["energy_distance"],
        "n_draws": len(x),
        "nfe": int(res.ledger.denoiser_nfe),
    }


def reference_constrained(mix, points, q_star: float, seed: int = REFERENCE_SEED):
    """A :class:`~dts_app.search.fidelity.Reference` of ``p0(x | D(x) > Q*)`` (10⁵
    rejection draws) and the acceptance rate of rejection sampling."""
    from ..search.fidelity import constrained_reference

    ref = constrained_reference(mix, points, q_star, seed=seed)
    return ref, ref.acceptance


def _fid(mix, x, ref, prize: int) -> dict:
    from ..search.fidelity import fidelity

    f = fidelity(mix, x, ref)
    shares = f["mode_shares"]
    return {
        "prize_share": shares[prize] if x.numel() else None,
        "target_prize_share": f["target_shares"][prize],
        "mode_shares": shares,
        "mean_log_p0": f["mean_log_p0"],
        "target_mean_log_p0": f["target_mean_log_p0"],
        "energy_distance": f["energy_distance"],
    }


def avoidance(cell, cache) -> dict:
    """Plain sampling of ``config.n`` paths under ``config.avoid`` around ``config.obstacles``
    (point obstacles, one Q*), against exact samples of the constrained law.

    ``nfe_ratio`` is NFEs per delivered sample over plain sampling's (steps per sample);
    with ``avoid="none"`` the result also has ``rejection``: the same samples with those
    within Q* thrown away (exact p0(x | D > Q*) up to the model's error), whose cost per
    delivered sample is 1 / acceptance.
    """
    from ..search import sample_paths, sampling_metrics

    cfg = cell.config
    problem = _problem(cfg, cache, verifiers=False)
    mix = problem.backend.reference_mixture()
    points = torch.tensor([list(o.value) for o in cfg.obstacles], dtype=torch.float64)
    ref, acceptance = reference_constrained(mix, points, cfg.q_star)
    prize = int(problem.backend.default_target())
    eng, beam = sample_paths(problem, cfg.n, store_x0=False)
    metrics = sampling_metrics(eng, beam)
    x = beam.x.reshape(len(beam.x), -1).double()
    per_sample = eng.ledger.denoiser_nfe / max(len(x), 1)
    plain = problem.steps * problem.nfe_per_step
    out = {
        "collision_rate": float(metrics.get("collision_rate", 0.0)),
        "n_final": len(x),
        "nfe": int(eng.ledger.denoiser_nfe),
        "nfe_ratio": per_sample / plain if len(x) else None,
        "reverts": int(eng.ledger.reverts),
        "exact_acceptance": acceptance,
    } | _fid(mix, x, ref, prize)
    if cfg.avoid == "none":
        keep = (pairwise_distance(x, points) > cfg.q_star).all(dim=1)
        acc = float(keep.double().mean())
        out["rejection"] = {
            "collision_rate": 0.0,
            "n_final": int(keep.sum()),
            "nfe_ratio": 1.0 / acc if acc > 0 else None,
            "acceptance": acc,
        } | _fid(mix, x[keep], ref, prize)
    return out


def picks(cell, cache) -> dict:
    """Best-of-n picks for every ``n`` in ``cell.key["ns"]``, ``K = cell.key["k"]`` of each:
    one best-of-(K·n_max) run, whose first K·n candidates split into K blocks of n (candidate
    i is the same sample alone or among many), each block's verifier favourite a pick.

    Per n: the mean search and held-out score of the K picks, the Fréchet distance of the
    picks to the target class's real images (digits: features of the held-out MLP, the
    independent judge), and their diversity (mean pairwise distance in model space). The
    number of picks is the same at every n, so the distances compare across n.
    """
    from ..digits.data import load_split
    from ..search import Runner
    from ..verifiers.digits import frechet_distance

    cfg, ns, k = cell.config, list(cell.extra["ns"]), int(cell.extra["k"])
    request = _request(cfg.replace(n=k * max(ns)), cache, "best-of-n")
    problem = request.problem
    res = Runner(request).run()
    cands = sorted(res.candidates, key=lambda c: tuple(c.key))
    split = load_split()
    real = torch.cat([split.x_train[split.y_train == int(cfg.target)], split.x_heldout[split.y_heldout == int(cfg.target)]])
    judge = problem.backend.classifier("oracle")
    out = {}
    for n in ns:
        chosen = [max(cands[b * n : (b + 1) * n], key=lambda c: (c.score, -c.key[0])) for b in range(k)]
        x = torch.stack([c.x0 for c in chosen]).float()
        flat = x.reshape(k, -1).double()
        div = float(pairwise_distance(flat, flat).sum() / (k * (k - 1)))
        out[str(n)] = {
            "score": sum(float(c.score) for c in chosen) / k,
            "heldout": sum(float(c.heldout_score) for c in chosen) / k,
            "frechet": frechet_distance(x.clamp(-1, 1), real, judge),
            "diversity": div,
        }
    return out | {"nfe": int(res.ledger.denoiser_nfe)}
