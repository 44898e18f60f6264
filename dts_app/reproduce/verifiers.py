"""Experiments on verifiers: hacking a supervised verifier (gmm ``hack`` and the digits
model), scaling on real images, and how well the self-supervised verifier tracks the oracle.

They all read :func:`.tasks.candidates` cells: one best-of-N_max run per seed with every
candidate's search and held-out score. Best-of-n for n ≤ N_max is read off the candidates
by index (candidate i is the same sample alone or among N_max): the N_max candidates split
into N_max / n disjoint blocks, each block's verifier favourite is a best-of-n draw, and
their mean is the seed's estimate (the error bars are standard errors over seeds).
"""

from __future__ import annotations

import math

from ..config import SearchConfig
from .base import Context, Finding, fmt, num, register, stat, trace

TASK = "dts_app.reproduce.tasks:candidates"


def _cells(ctx: Context, configs: list[SearchConfig]) -> list:
    from ..executors import Cell

    return [Cell(c, None, "plain", task=TASK) for c in configs]


def nested_best(score: list, heldout: list, ns: list[int]) -> dict:
    """``{n: (mean best score, mean held-out score of the chosen)}`` over disjoint blocks."""
    out = {}
    for n in ns:
        picks = []
        for b in range(len(score) // n):
            block = range(b * n, (b + 1) * n)
            i = max(block, key=lambda j: (score[j] if score[j] is not None else -math.inf, -j))
            picks.append((score[i], heldout[i]))
        out[n] = (sum(p[0] for p in picks) / len(picks), sum(p[1] for p in picks) / len(picks))
    return out


def best_of_curves(cells: list, results: dict, ns: list[int]) -> tuple[list[dict], list[dict]]:
    """Per n: stat over seeds of the best score and of the chosen sample's held-out score."""
    per_seed = [nested_best(results[c.id]["score"], results[c.id]["heldout"], ns) for c in cells if c.id in results]
    search = [stat([s[n][0] for s in per_seed]) for n in ns]
    held = [stat([s[n][1] for s in per_seed]) for n in ns]
    return search, held


def _powers(top: int, base: int = 2) -> list[int]:
    ns, n = [], 1
    while n <= top:
        ns.append(n)
        n *= base
    return ns


def _rises(s: list[dict]) -> bool:
    a, b = s[0], s[-1]
    return None not in (a["mean"], b["mean"]) and b["mean"] - a["mean"] > 2 * math.hypot(a["se"], b["se"])


def _hacked(search: list[dict], held: list[dict]) -> tuple[bool, int]:
    """The search score rises while the held-out score falls from its peak (beyond 2 s.e.)."""
    means = [h["mean"] if h["mean"] is not None else -math.inf for h in held]
    peak = max(range(len(means)), key=lambda i: means[i])
    falls = peak < len(held) - 1 and means[peak] - means[-1] > 2 * math.hypot(held[peak]["se"], held[-1]["se"])
    return bool(_rises(search) and falls), peak


# ---- 2. verifier hacking on gmm `hack` ----


def _hack_setup(ctx: Context) -> tuple[SearchConfig, int]:
    return SearchConfig(preset="hack", verifier="supervised", heldout="oracle", steps=16), ctx.pick(512, 4096)


def plan_hack(ctx: Context) -> list:
    cfg, top = _hack_setup(ctx)
    return _cells(ctx, [cfg.replace(n=top, seed=ctx.seed + s) for s in range(ctx.seeds)])


@register(
    "verifier-hacking",
    "Verifier hacking (gmm hack)",
    "Ma et al. 2025: searching hard against one verifier overfits it; the score the search sees keeps rising while "
    "a held-out judge stops improving or falls.",
    "python -m dts_app search --preset hack --verifier supervised --heldout oracle --n 512 --steps 16",
)(plan_hack)
def verifier_hacking(ctx: Context, cells: list, results: dict) -> Finding:
    cfg, top = _hack_setup(ctx)
    ns = _powers(top)
    search, held = best_of_curves(cells, results, ns)
    ok, peak = _hacked(search, held)
    setup = {"backend": "gmm", "preset": "hack", "algorithm": "best-of-n", "verifier": "supervised (linear classifier)"}
    setup |= {"heldout": "oracle (log-density of the target class)", "steps": cfg.steps, "n": ns, "seeds": ctx.seeds}
    finding = (
        f"Best-of-N on the linear classifier: its score went {fmt(search[0])} (N=1) → {fmt(search[-1])} (N={ns[-1]}); "
        f"the held-out oracle went {fmt(held[0])} → {fmt(held[peak])} at its peak (N={ns[peak]}) → {fmt(held[-1])} "
        f"(N={ns[-1]}): {'hacking, as claimed' if ok else 'no significant fall, so hacking is not shown'}."
    )
    fig = {
        "title": "Verifier hacking (gmm hack): search score vs held-out oracle",
        "x_title": "N (best-of-N)",
        "y_title": "search score: log P(target) (linear classifier)",
        "y2_title": "held-out oracle: log-density",
        "x_log": True,
        "traces": [trace("search verifier", ns, search), trace("held-out oracle", ns, held, axis="y2", dash="dash")],
    }
    table = {
        "columns": ["N", "search score", "held-out oracle"],
        "rows": [[n, fmt(s), fmt(h)] for n, s, h in zip(ns, search, held)],
    }
    return Finding(setup, {"n": ns, "search": search, "heldout": held, "peak_n": ns[peak]}, finding, ok, fig, table)


# ---- 3. self-supervised verifier vs the oracle ----


UNCONDITIONAL = "unconditional"


def _ss_settings(ctx: Context) -> dict[str, SearchConfig]:
    """Ma et al.'s setting is class-conditional generation (the condition is the class the
    oracle scores); the unconditional rows ask a label-free score which class is wanted,
    which it cannot know, and are reported apart from the verdict."""
    base = SearchConfig(verifier="self-supervised", heldout="oracle", steps=16)
    n_gmm, n_dig = ctx.pick(256, 1024), ctx.pick(64, 256)
    digits = base.replace(backend="digits", preset=None, n=n_dig)
    return {
        "digits, class-conditional, guidance 0.5": digits.replace(guidance=0.5),
        "digits, class-conditional, guidance 1": digits.replace(guidance=1.0),
        "digits, class-conditional, guidance 2": digits.replace(guidance=2.0),
        "gmm trap, conditioned on the prize": base.replace(preset="trap", condition=True, n=n_gmm),
        f"digits, {UNCONDITIONAL} (guidance 0)": digits.replace(guidance=0.0),
        f"gmm trap, {UNCONDITIONAL}": base.replace(preset="trap", n=n_gmm),
    }


def plan_ss(ctx: Context) -> list:
    cfgs = []
    for name, cfg in _ss_settings(ctx).items():
        for s in range(ctx.seeds):
            extra = {"target": (ctx.seed + s) % 10} if name.startswith("digits") else {}
            cfgs.append(cfg.replace(seed=ctx.seed + s, **extra))
    return _cells(ctx, cfgs)


def _short(name: str) -> str:
    """A setting's name short enough for a bar label."""
    for long, short in (("class-conditional, guidance ", "cond. g="), ("unconditional (guidance 0)", "uncond."),
                        ("conditioned on the prize", "cond."), ("unconditional", "uncond.")):  # fmt: skip
        name = name.replace(long, short)
    return name


def _corr(a: list, b: list) -> tuple[float | None, float | None]:
    from scipy.stats import pearsonr, spearmanr

    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return None, None
    xs, ys = zip(*pairs)
    return num(spearmanr(xs, ys).statistic), num(pearsonr(xs, ys).statistic)


@register(
    "self-supervised",
    "Self-supervised verifier vs the oracle",
    "Ma et al. 2025 (class-conditional ImageNet): a self-supervised verifier, the cosine similarity of features of "
    "x̂0 at σ = 0.4 and of the final sample, correlates with the classifier's score, so it can guide search without "
    "a reward model.",
    "python -m dts_app search --backend digits --class 3 --guidance 1 --verifier self-supervised --heldout oracle "
    "--algorithm best-of-n --n 64",
)(plan_ss)
def self_supervised(ctx: Context, cells: list, results: dict) -> Finding:
    settings = _ss_settings(ctx)
    rows, per = [], {}
    for k, name in enumerate(settings):
        mine = cells[k * ctx.seeds : (k + 1) * ctx.seeds]
        cors = [_corr(results[c.id]["score"], results[c.id]["heldout"]) for c in mine if c.id in results]
        sp, pe = stat([c[0] for c in cors]), stat([c[1] for c in cors])
        positive = sp["mean"] is not None and sp["mean"] - 2 * sp["se"] > 0
        conditional = UNCONDITIONAL not in name
        per[name] = {"spearman": sp, "pearson": pe, "positive": positive, "candidates": settings[name].n}
        per[name]["conditional"] = conditional
        rows.append([name, settings[name].n, fmt(sp), fmt(pe), positive, "yes" if conditional else "no (not the claim)"])
    cond = {n: v for n, v in per.items() if v["conditional"]}
    held = bool(cond) and all(v["positive"] for v in cond.values())
    desc = "; ".join(f"{n} {fmt(v['spearman'])}" for n, v in cond.items())
    unc = "; ".join(f"{n} {fmt(v['spearman'])}" for n, v in per.items() if not v["conditional"])
    finding = (
        f"Rank correlation (Spearman) between the self-supervised score and the oracle across candidates, in the "
        f"paper's class-conditional setting: {desc}; "
        f"{'positive beyond 2 s.e. in every one' if held else 'not positive beyond 2 s.e. in every one'}. "
        f"Unconditional (a label-free score cannot know which class the oracle wants): {unc}. On gmm conditioned on "
        "one isotropic Gaussian the agreement is exactly monotone in the oracle (x0 − x̂0(t) ∝ x0 − μ there)."
    )
    names = [_short(n) for n in per]
    fig = {
        "title": "Self-supervised score vs oracle: correlation across candidates (mean ± s.e. over seeds)",
        "x_title": "setting",
        "y_title": "correlation",
        "traces": [
            trace("Spearman", names, list(v["spearman"] for v in per.values()), type="bar"),
            trace("Pearson", names, list(v["pearson"] for v in per.values()), type="bar"),
        ],
        "hlines": [{"y": 0.0, "name": "no correlation"}],
    }
    setup = {"algorithm": "best-of-n (candidates only)", "verifier": "self-supervised", "heldout": "oracle", "steps": 16}
    setup |= {"settings": {n: {"backend": c.backend, "preset": c.preset, "guidance": c.guidance, "condition": c.condition,
                               "candidates": c.n} for n, c in settings.items()}}  # fmt: skip
    setup |= {"digits": "target class = seed mod 10; features: the CNN's penultimate layer (cosine)", "seeds": ctx.seeds}
    setup |= {"gmm": "−‖x̂0(0.4) − x0‖ (no feature network: the cosine of raw 2-D points measures only their angle)"}
    columns = ["setting", "candidates", "Spearman", "Pearson", "positive", "the paper's setting"]
    table = {"columns": columns, "rows": rows}
    return Finding(setup, {"correlation": per}, finding, held, fig, table)


# ---- 8. digits: real images, CNN verifier vs held-out MLP ----


def _digits_setup(ctx: Context) -> tuple[SearchConfig, int]:
    cfg = SearchConfig(backend="digits", preset=None, guidance=0.0, verifier="supervised", heldout="oracle", steps=16)
    return cfg, ctx.pick(64, 512)


def plan_digits(ctx: Context) -> list:
    cfg, top = _digits_setup(ctx)
    return _cells(ctx, [cfg.replace(n=top, seed=ctx.seed + s, target=(ctx.seed + s) % 10) for s in range(ctx.seeds)])


def _digits(ctx: Context, cells: list, results: dict) -> tuple[dict, list[int], list[dict], list[dict], dict]:
    cfg, top = _digits_setup(ctx)
    ns = _powers(top, 2)
    search, held = best_of_curves(cells, results, ns)
    setup = {
        "backend": "digits",
        "guidance": cfg.guidance,
        "target": "class = seed mod 10 (guidance 0: the model is unconditional, so search has a class to find)",
        "algorithm": "best-of-n",
        "verifier": "supervised (CNN)",
    }
    setup |= {"heldout": "oracle (MLP, another architecture and seed)", "steps": cfg.steps, "n": ns, "seeds": ctx.seeds}
    fig = {
        "title": "Digits (guidance 0, class target): best-of-N, CNN verifier vs held-out MLP",
        "x_title": "N (best-of-N)",
        "y_title": "−log P(class)  (lower is better, log)",
        "x_log": True,
        "y_log": True,
        "traces": [
            trace("search: CNN", ns, y=[_neg(s["mean"]) for s in search]) | {"err": [s["se"] for s in search]},
            trace("held-out: MLP", ns, y=[_neg(s["mean"]) for s in held], dash="dash") | {"err": [s["se"] for s in held]},
        ],
    }
    table = {
        "columns": ["N", "CNN log P (search)", "MLP log P (held out)"],
        "rows": [[n, fmt(s), fmt(h)] for n, s, h in zip(ns, search, held)],
    }
    return setup, ns, search, held, {"figure": fig, "table": table}


def _neg(x):
    return None if x is None else num(max(-x, 1e-9))


@register(
    "digits-scaling",
    "Digits: search scales on real images",
    "Ma et al. 2025 (ImageNet, class-conditional): best-of-N with a supervised classifier verifier raises both its "
    "own score and held-out measures as N grows.",
    "python -m dts_app search --backend digits --class 3 --guidance 0 --verifier supervised --heldout oracle --n 64",
)(plan_digits)
def digits_scaling(ctx: Context, cells: list, results: dict) -> Finding:
    setup, ns, search, held, extra = _digits(ctx, cells, results)
    ok = _rises(search) and _rises(held)
    finding = (
        f"On the digits model at guidance 0, best-of-N with the CNN went {fmt(search[0])} (N=1) → {fmt(search[-1])} "
        f"(N={ns[-1]}) in log P(class), and the held-out MLP's log P of the chosen sample {fmt(held[0])} → "
        f"{fmt(held[-1])}: {'both rise beyond 2 s.e.' if ok else 'not both rise beyond 2 s.e.'}."
    )
    return Finding(setup, {"n": ns, "search": search, "heldout": held}, finding, bool(ok), extra["figure"], extra["table"])


# ---- 9. digits hacking, measured where it can show ----

PICKS = "dts_app.reproduce.tasks:picks"


def _picks_setup(ctx: Context) -> tuple[SearchConfig, list[int], int]:
    cfg, _ = _digits_setup(ctx)
    return cfg, _powers(ctx.pick(64, 1024), 4), ctx.pick(16, 16)


def plan_picks(ctx: Context) -> list:
    from ..executors import Cell

    cfg, ns, k = _picks_setup(ctx)
    return [
        Cell(cfg.replace(seed=ctx.seed + s, target=(ctx.seed + s) % 10), None, "plain", task=PICKS, extra={"ns": ns, "k": k})
        for s in range(ctx.seeds)
    ]


@register(
    "digits-hacking",
    "Digits: does the CNN verifier get hacked?",
    "Ma et al. 2025: searching harder against a supervised verifier overfits it; the picks' distribution gets worse "
    "(FID rises, diversity falls) while the verifier's score still rises.",
    "python -m dts_app search --backend digits --class 3 --guidance 0 --verifier supervised --heldout oracle "
    "--algorithm best-of-n --n 1024",
)(plan_picks)
def digits_hacking(ctx: Context, cells: list, results: dict) -> Finding:
    cfg, ns, k = _picks_setup(ctx)
    rs = [results[c.id] for c in cells if c.id in results]
    col = {m: [stat([r[str(n)][m] for r in rs]) for n in ns] for m in ("score", "heldout", "frechet", "diversity")}
    fd = [s["mean"] if s["mean"] is not None else math.inf for s in col["frechet"]]
    low = min(range(len(ns)), key=lambda i: fd[i])
    rises = low < len(ns) - 1 and fd[-1] - fd[low] > 2 * math.hypot(col["frechet"][low]["se"], col["frechet"][-1]["se"])
    hacked = bool(_rises(col["score"]) and rises)
    held_sat = col["heldout"][-1]["mean"] is not None and col["heldout"][-1]["mean"] > -1e-3
    finding = (
        f"Best-of-N on the CNN (digits, guidance 0, class = seed mod 10), {k} picks per N: the CNN's log P rose "
        f"{fmt(col['score'][0])} (N=1) → {fmt(col['score'][-1])} (N={ns[-1]}); the Fréchet distance of the picks to the "
        f"class's real images (held-out MLP features) went {fmt(col['frechet'][0])} → {fmt(col['frechet'][low])} at its "
        f"lowest (N={ns[low]}) → {fmt(col['frechet'][-1])}, and their diversity {fmt(col['diversity'][0])} → "
        f"{fmt(col['diversity'][-1])}: {'the distribution gets worse while the score rises: hacking' if hacked else 'no rise of the distance beyond 2 s.e. after its lowest point, so no hacking shows at these N'}. "
        + (
            f"The held-out MLP's log P of the picks saturates ({fmt(col['heldout'][-1])} at N={ns[-1]}): it cannot fall, "
            "which is why a distribution measure is the judge here."
            if held_sat
            else f"The held-out MLP's log P of the picks: {fmt(col['heldout'][0])} → {fmt(col['heldout'][-1])}."
        )
    )
    fig = {
        "title": f"Digits hacking: CNN score vs the picks' distribution ({k} picks per N)",
        "x_title": "N (best-of-N)",
        "y_title": "Fréchet distance to the class (held-out MLP features)",
        "y2_title": "CNN log P (search)",
        "x_log": True,
        "traces": [
            trace("Fréchet distance of the picks", ns, col["frechet"]),
            trace("search: CNN log P", ns, col["score"], axis="y2", dash="dash"),
        ],
    }
    table = {
        "columns": ["N", "CNN log P (search)", "MLP log P (held out)", "Fréchet distance", "diversity"],
        "rows": [[n, *[fmt(col[m][i]) for m in ("score", "heldout", "frechet", "diversity")]] for i, n in enumerate(ns)],
    }
    setup = {"backend": "digits", "guidance": cfg.guidance, "verifier": "supervised (CNN)", "steps": cfg.steps}
    setup |= {"judge": "Fréchet distance to the target class's 180 real images in the held-out MLP's features; "
              "diversity = mean pairwise L2 distance of the picks in model space", "picks_per_n": k, "n": ns,
              "seeds": ctx.seeds}  # fmt: skip
    verdict, reason = None, ""
    if not hacked and low == len(ns) - 1:
        verdict = "not testable here"
        reason = (
            f"the picks' Fréchet distance is still falling at the largest N ({ns[-1]}): the search has not yet passed "
            "the point where over-optimising could show (the full run goes to N = 1,024)"
        )
    return Finding(setup, col | {"n": ns, "lowest_n": ns[low]}, finding, hacked, fig, table, verdict, reason)
