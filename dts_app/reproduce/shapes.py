"""Experiments on the shapes world (issue 26): GenEval-style exact pass rates.

Seeded prompts of GenEval's six categories (:func:`dts_app.shapes.prompts.generate_batch`),
every image judged by the exact checker (the ``oracle``; a pass is graded score 1):

- ``shapes-base``: the base model's own pass rate per category (measured, not tuned);
- ``shapes-search``: pass rate against NFEs for best-of-N, search over paths, tree search
  and SMC, with the checker as the search verifier;
- ``shapes-fk``: SMC with 2–8 particles against best-of-N with as many samples of the same
  SDE (FK steering's claim);
- ``shapes-hacking``: best-of-N with the CNN (supervised) verifier, judged by the checker.

:func:`.tasks.candidates` cells (every candidate's search and checker score, by index) give
the single-sample rate and best-of-n by either verifier for n ≤ N_max (disjoint blocks,
:func:`.verifiers.nested_best`); budget-fitted search cells (the executor's search through
the one runner) give paths, tree and SMC. Error bars: standard errors over prompts.
"""

from __future__ import annotations

import math

from ..config import SearchConfig
from .base import Context, Finding, fmt, num, register, stat, trace
from .verifiers import nested_best

__all__ = ["PROMPT_SEED", "setup", "prompts", "plan"]

TASK = "dts_app.reproduce.tasks:candidates"
PROMPT_SEED = 9000  # apart from evaluate.py's 5000 and the training record's 20000
GUIDANCE = 2.0
FOCUS = ("counting", "colors")  # the issue's test: search fixes counting and colour failures
COMMAND = (
    "python -m dts_app search --backend shapes --prompt 'three squares' --guidance 2 --verifier oracle "
    "--algorithm smc --n 4 --sde-gamma 0.5"
)


def setup(ctx: Context) -> dict:
    """The sizes of a quick or full run."""
    from ..shapes.prompts import CATEGORIES

    return {
        "steps": ctx.pick(16, 32),
        "n_max": ctx.pick(8, 32),
        "ks": ctx.pick([2, 8], [2, 4, 8, 16]),  # budgets in sample-equivalents (path NFEs)
        "smc_ks": [2, 4, 8],
        "paths_ks": ctx.pick([8], [8, 16]),  # one path of search over paths costs ≈ 7.6 plain paths
        "search_categories": list(ctx.pick(FOCUS, CATEGORIES)),
        "categories": list(CATEGORIES),
        "prompts": ctx.seeds,
        "guidance": GUIDANCE,
    }


def prompts(ctx: Context, category: str) -> list[str]:
    """``ctx.seeds`` seeded prompts of a category (a full run's list extends a quick one's)."""
    from ..shapes.prompts import CATEGORIES, generate_batch

    k = CATEGORIES.index(category)
    return [text for text, _, _ in generate_batch(PROMPT_SEED + 100 * k + ctx.seed, ctx.seeds, category)]


def _config(ctx: Context, prompt: str, s: int, **kw) -> SearchConfig:
    st = setup(ctx)
    base = dict(backend="shapes", preset=None, prompt=prompt, guidance=GUIDANCE, steps=st["steps"], seed=ctx.seed + s)
    return SearchConfig(**(base | {"heldout": "oracle"} | kw))


def plan(ctx: Context) -> list:
    """Every cell of the four experiments (they share them): candidates of every category
    (CNN verifier, checker held out; ODE and, for SMC's baseline, SDE), then the fitted
    searches with the checker as verifier."""
    from ..executors import Cell

    st = setup(ctx)
    path = 2 * st["steps"]  # NFEs of one sample (guidance: 2 per step)
    cells = []
    for cat in st["categories"]:
        for s, p in enumerate(prompts(ctx, cat)):
            cells.append(Cell(_config(ctx, p, s, verifier="supervised", n=st["n_max"]), None, "plain", task=TASK))
    for cat in st["search_categories"]:
        for s, p in enumerate(prompts(ctx, cat)):
            sde = _config(ctx, p, s, verifier="oracle", n=max(st["smc_ks"]), solver="sde")
            cells.append(Cell(sde, None, "plain", task=TASK))
            runs = [("tree", k) for k in st["ks"]] + [("paths", k) for k in st["paths_ks"]]
            runs += [("smc", k) for k in st["smc_ks"]]
            for algo, k in runs:
                cells.append(Cell(_config(ctx, p, s, verifier="oracle", algorithm=algo), k * path, "fit"))
    return cells


# ---- reading the cells ----------------------------------------------------------------


def _passes(values: list) -> list[float]:
    return [1.0 if v is not None and v >= 1.0 else 0.0 for v in values]


def _cands(ctx: Context, cells: list, results: dict, solver: str = "euler") -> dict:
    """``{category: [candidates result per prompt]}`` of the candidates cells."""
    from ..shapes.prompts import parse

    out: dict = {}
    for c in cells:
        if c.task == TASK and c.config.solver == solver and c.id in results:
            out.setdefault(parse(c.config.prompt).category, []).append(results[c.id])
    return out


def _fitted(cells: list, results: dict) -> dict:
    """``{(category, algorithm, budget): [pass 0/1 per prompt]}`` of the fitted searches
    (a run that could not start at its budget, best None, is left out)."""
    from ..shapes.prompts import parse

    out: dict = {}
    for c in cells:
        if c.mode == "fit" and c.id in results and results[c.id].get("heldout_score") is not None:
            key = (parse(c.config.prompt).category, c.config.algorithm, c.budget)
            out.setdefault(key, []).append(1.0 if results[c.id]["heldout_score"] >= 1.0 else 0.0)
    return out


def _block_rates(rs: list[dict], ns: list[int], by: str) -> list[dict]:
    """Per n: stat over prompts of the pass rate of best-of-n picked by ``by`` (``score``:
    the run's verifier; ``heldout``: the checker itself, i.e. any of the n passes)."""
    per = [nested_best(r[by], _passes(r["heldout"]), ns) for r in rs]
    return [stat([p[n][1] for p in per]) for n in ns]


def _diff(a: dict, b: dict) -> tuple[float | None, float]:
    if a["mean"] is None or b["mean"] is None:
        return None, 0.0
    return a["mean"] - b["mean"], math.hypot(a["se"] or 0.0, b["se"] or 0.0)


def _pm(d: float | None, se: float) -> str:
    return "n/a" if d is None else f"{d:+.2f} ± {se:.2f}"


def _setup_dict(ctx: Context, **extra) -> dict:
    st = setup(ctx)
    out = {"backend": "shapes", "guidance": GUIDANCE, "steps": st["steps"], "solver": "euler (ODE) unless said"}
    out |= {
        "prompts_per_category": st["prompts"],
        "prompt_seed": PROMPT_SEED + ctx.seed,
        "judge": "exact checker: pass = graded score 1",
    }
    return out | extra


# ---- (c) the base model ---------------------------------------------------------------

CLAIM_BASE = (
    "GenEval (Ghosh et al. 2023): text-to-image models get single objects right far more often than counts, "
    "positions and colour attribution. Here: the shapes model's own pass rate per category, measured, not tuned."
)


@register("shapes-base", "Shapes: the base model's pass rate per category", CLAIM_BASE,
          "python -m dts_app search --backend shapes --prompt 'a blue square left of a yellow triangle' --guidance 2 "
          "--verifier oracle --heldout supervised --n 32")(plan)  # fmt: skip
def shapes_base(ctx: Context, cells: list, results: dict) -> Finding:
    st = setup(ctx)
    cands = _cands(ctx, cells, results)
    rate = {c: stat([sum(_passes(r["heldout"])) / len(r["heldout"]) for r in cands.get(c, [])]) for c in st["categories"]}
    graded = {c: stat([sum(r["heldout"]) / len(r["heldout"]) for r in cands.get(c, [])]) for c in st["categories"]}
    hard = ("counting", "position", "color_attr")
    gaps = {c: _diff(rate["single_object"], rate[c]) for c in hard}
    held = all(d is not None and d > 2 * se for d, se in gaps.values())
    per = ", ".join(f"{c} {fmt(rate[c], 2)}" for c in st["categories"])
    finding = (
        f"One sample of the shapes model ({st['steps']} Euler steps, guidance {GUIDANCE:g}) passes the exact checker: {per} "
        f"(share of {st['n_max']} samples per prompt, mean ± s.e. over {st['prompts']} prompt(s) per category). Single objects "
        f"minus counting / position / colour attribution: {', '.join(_pm(*gaps[c]) for c in hard)}: "
        f"{'single objects are the easiest, as in GenEval' if held else 'not every hard category is below single objects by 2 s.e'}."
    )
    cats = st["categories"]
    fig = {
        "title": "Shapes: the base model's pass rate per category (exact checker)",
        "x_title": "category",
        "y_title": "pass rate of one sample",
        "traces": [trace("pass rate", cats, [rate[c] for c in cats], type="bar")],
    }
    table = {
        "columns": ["category", "pass rate (mean ± s.e., median)", "graded score"],
        "rows": [[c, f"{fmt(rate[c], 2)} (med {rate[c]['median']:.2g})" if rate[c]["mean"] is not None else "n/a",
                  fmt(graded[c], 2)] for c in cats],
    }  # fmt: skip
    data = {"pass_rate": rate, "graded": graded, "single_minus": {c: [num(d), num(se)] for c, (d, se) in gaps.items()}}
    return Finding(_setup_dict(ctx, samples_per_prompt=st["n_max"]), data, finding, held, fig, table)


# ---- (a) pass rate against NFEs -------------------------------------------------------

CLAIM_SEARCH = (
    "Ma et al. 2025; Singhal et al. 2025: on GenEval, spending more inference compute on search with a verifier "
    "raises the pass rate over a single sample, on counting and colour prompts too."
)


def curves(ctx: Context, cells: list, results: dict, category: str) -> dict:
    """``{algorithm: (budgets in NFEs, [stat of the pass rate])}`` of one category."""
    st = setup(ctx)
    path = 2 * st["steps"]
    fitted = _fitted(cells, results)
    rs = _cands(ctx, cells, results).get(category, [])
    ns = [1, *st["ks"]]
    out = {"best-of-n": ([n * path for n in ns], _block_rates(rs, ns, "heldout") if rs else [stat([])] * len(ns))}
    for algo, ks in (("paths", st["paths_ks"]), ("tree", st["ks"]), ("smc", st["smc_ks"])):
        out[algo] = ([k * path for k in ks], [stat(fitted.get((category, algo, k * path), [])) for k in ks])
    return out


@register("shapes-search", "Shapes: search raises the exact pass rate (counting, colours)", CLAIM_SEARCH, COMMAND)(plan)
def shapes_search(ctx: Context, cells: list, results: dict) -> Finding:
    st = setup(ctx)
    by_cat = {c: curves(ctx, cells, results, c) for c in st["search_categories"]}
    gains, rows = {}, []
    for c, cur in by_cat.items():
        one = cur["best-of-n"][1][0]
        top = max((s for _, (_, ss) in cur.items() for s in ss[-1:]), key=lambda s: -1 if s["mean"] is None else s["mean"])
        gains[c] = _diff(top, one)
        for algo, (budgets, ss) in cur.items():
            rows.append([c, algo, *[f"{b}: {fmt(s, 2)}" for b, s in zip(budgets, ss)]])
    held = all(gains.get(c, (None, 0))[0] is not None and gains[c][0] > 2 * gains[c][1] for c in FOCUS)
    per = "; ".join(f"{c}: one sample {fmt(by_cat[c]['best-of-n'][1][0], 2)}, best at the top budget {_pm(*gains[c])} above it"
                    for c in st["search_categories"])  # fmt: skip
    finding = (
        f"With the exact checker as verifier ({st['steps']} steps, {st['prompts']} prompt(s) per category): {per}. "
        f"{'Search raises the pass rate beyond 2 s.e. on counting and colours.' if held else 'Not both of counting and colours gain beyond 2 s.e.'}"
    )
    traces = []
    for c, cur in by_cat.items():
        for algo, (budgets, ss) in cur.items():
            traces.append(trace(f"{c}: {algo}", budgets, ss, dash="dot" if c != FOCUS[0] else None))
    fig = {"title": "Shapes: exact pass rate against NFEs (checker as verifier)", "x_title": "NFEs", "y_title": "pass rate",
           "x_log": True, "traces": traces}  # fmt: skip
    width = max(len(r) for r in rows) if rows else 2
    table = {"columns": ["category", "algorithm", *[f"budget {i + 1}" for i in range(width - 2)]],
             "rows": [r + [""] * (width - len(r)) for r in rows]}  # fmt: skip
    data = {c: {a: {"nfe": b, "pass_rate": s} for a, (b, s) in cur.items()} for c, cur in by_cat.items()}
    data["gain_at_top"] = {c: [num(d), num(se)] for c, (d, se) in gains.items()}
    return Finding(_setup_dict(ctx, categories=st["search_categories"]), data, finding, held, fig, table)


# ---- (a') FK steering: SMC against best-of-N at equal NFEs -----------------------------

CLAIM_FK = (
    "Singhal et al. 2025 (FK steering): on GenEval, SMC with a few particles (k = 2–8) passes more prompts than "
    "best-of-N with the same number of samples."
)


def _fk_pairs(ctx: Context, cells: list, results: dict) -> dict:
    """``{k: [(smc pass, best-of-k pass rate)] per prompt}``: SMC with k particles against
    best-of-k by the checker among the same prompt's SDE candidates."""
    st = setup(ctx)
    path = 2 * st["steps"]
    sde, smc = {}, {}
    for c in cells:
        if c.id not in results:
            continue
        key = (c.config.prompt, c.config.seed)
        if c.task == TASK and c.config.solver == "sde":
            sde[key] = nested_best(results[c.id]["heldout"], _passes(results[c.id]["heldout"]), st["smc_ks"])
        elif c.mode == "fit" and c.config.algorithm == "smc" and results[c.id].get("heldout_score") is not None:
            smc[(key, c.budget // path)] = 1.0 if results[c.id]["heldout_score"] >= 1.0 else 0.0
    return {k: [(smc[(key, k)], b[k][1]) for key, b in sde.items() if (key, k) in smc] for k in st["smc_ks"]}


@register("shapes-fk", "Shapes: SMC with 2–8 particles against best-of-N (FK steering)", CLAIM_FK, COMMAND)(plan)
def shapes_fk(ctx: Context, cells: list, results: dict) -> Finding:
    st = setup(ctx)
    pairs = _fk_pairs(ctx, cells, results)
    ks = st["smc_ks"]
    smc = [stat([a for a, _ in pairs[k]]) for k in ks]
    bon = [stat([b for _, b in pairs[k]]) for k in ks]
    diff = [stat([a - b for a, b in pairs[k]]) for k in ks]
    wins = [d["mean"] is not None and d["mean"] > 2 * (d["se"] or 0.0) for d in diff]
    losses = [d["mean"] is not None and d["mean"] < -2 * (d["se"] or 0.0) for d in diff]
    held = sum(wins) > len(ks) / 2
    per = "; ".join(f"k = {k}: SMC {fmt(s, 2)} vs best-of-{k} {fmt(b, 2)} (paired difference {fmt(d, 2)})"
                    for k, s, b, d in zip(ks, smc, bon, diff))  # fmt: skip
    finding = (
        f"Over {', '.join(st['search_categories'])} ({len(pairs[ks[0]])} prompts, {st['steps']} SDE steps, γ = 0.5, the "
        f"checker's graded score as potential on x̂0): {per}. "
        + (
            "SMC passes more prompts beyond 2 s.e. at most k."
            if held
            else "SMC is below best-of-N beyond 2 s.e. at most k."
            if sum(losses) > len(ks) / 2
            else "The difference is within 2 s.e. at most k: no advantage of SMC shows here."
        )
    )
    nfe = [k * 2 * st["steps"] for k in ks]
    fig = {
        "title": "Shapes: SMC against best-of-N on the same SDE (exact pass rate)",
        "x_title": "NFEs (k samples or particles)",
        "y_title": "pass rate",
        "x_log": True,
        "traces": [trace("SMC (FK steering)", nfe, smc), trace("best-of-N (same SDE)", nfe, bon, dash="dash")],
    }
    table = {
        "columns": ["k", "NFEs", "SMC", "best-of-k (SDE)", "SMC − best-of-k (paired)"],
        "rows": [[k, n, fmt(s, 2), fmt(b, 2), fmt(d, 2)] for k, n, s, b, d in zip(ks, nfe, smc, bon, diff)],
    }
    data = {"k": ks, "nfe": nfe, "smc": smc, "best_of_k": bon, "difference": diff}
    setup_d = _setup_dict(
        ctx, categories=st["search_categories"], solver="sde (γ = 0.5) for both", potential="difference, τ = 0.1"
    )
    return Finding(setup_d, data, finding, held, fig, table)


# ---- (b) hacking the CNN ----------------------------------------------------------------

CLAIM_HACK = (
    "Ma et al. 2025: searching harder against a supervised verifier overfits it: its score keeps rising while a "
    "held-out judge (here the exact checker) stalls or falls. Stall: over the upper half of N the CNN's score and the "
    "checker's own picks rise beyond 2 s.e. while the CNN's picks do not."
)


@register("shapes-hacking", "Shapes: best-of-N on the CNN, judged by the exact checker", CLAIM_HACK,
          "python -m dts_app search --backend shapes --prompt 'three squares' --guidance 2 --verifier supervised "
          "--heldout oracle --n 32")(plan)  # fmt: skip
def shapes_hacking(ctx: Context, cells: list, results: dict) -> Finding:
    st = setup(ctx)
    rs = [r for v in _cands(ctx, cells, results).values() for r in v]
    ns, n = [], 1
    while n <= st["n_max"]:
        ns.append(n)
        n *= 2
    cnn = [nested_best(r["score"], _passes(r["heldout"]), ns) for r in rs]
    oracle = [nested_best(r["heldout"], _passes(r["heldout"]), ns) for r in rs]
    score = [stat([p[n][0] for p in cnn]) for n in ns]
    by_cnn = [stat([p[n][1] for p in cnn]) for n in ns]
    by_oracle = [stat([p[n][1] for p in oracle]) for n in ns]
    rise, rise_se = _diff(score[-1], score[0])
    gain, gain_se = _diff(by_cnn[-1], by_cnn[0])
    peak = max(range(len(ns)), key=lambda i: by_cnn[i]["mean"] if by_cnn[i]["mean"] is not None else -1.0)
    fall, fall_se = _diff(by_cnn[peak], by_cnn[-1])
    score_rises = rise is not None and rise > 2 * rise_se
    helps = gain is not None and gain > 2 * gain_se
    falls = fall is not None and peak < len(ns) - 1 and fall > 2 * fall_se
    # stalls: over the upper half of N the CNN's score still rises and picks that pass exist (the checker's own
    # picks rise), yet the CNN's picks do not pass more often (each beyond 2 s.e.)
    mid = len(ns) // 2
    up = [_diff(xs[-1], xs[mid]) for xs in (score, by_cnn, by_oracle)]
    stalls = all(d is not None for d, _ in up) and up[0][0] > 2 * up[0][1] and up[1][0] <= 2 * up[1][1]
    stalls = stalls and up[2][0] > 2 * up[2][1]
    held = bool(score_rises and (falls or stalls))
    gap, gap_se = _diff(by_oracle[-1], by_cnn[-1])
    if not score_rises:
        verdict, reason = "not testable here", "the CNN's own score does not rise with N, so over-optimising it cannot show"
        tail = "The CNN's own score does not rise beyond 2 s.e., so there is nothing to hack at these N."
    elif falls:
        verdict, reason = "held", ""
        tail = f"The CNN's score rises while the checker's pass rate of its picks falls after N = {ns[peak]}: hacking."
    elif stalls:
        verdict, reason = "held", ""
        tail = (
            f"From N = {ns[mid]} to {ns[-1]} the CNN's log P still rises ({_pm(*up[0])}) and the checker's own picks gain "
            f"{_pm(*up[2])}, but the CNN's picks gain only {_pm(*up[1])}: its extra score buys no passes (hacking by a stall)."
        )
    elif helps:
        verdict, reason = "not held", ""
        tail = "The checker's pass rate of the CNN's picks rises too (beyond 2 s.e.), with no fall: at these N the CNN is a useful proxy, not hacked."
    else:
        verdict = "not testable here"
        reason = "the checker's pass rate of the CNN's picks neither rises nor falls beyond 2 s.e.: too few prompts to tell"
        tail = "The checker's pass rate of the CNN's picks neither rises nor falls beyond 2 s.e."
    finding = (
        f"Best-of-N on the CNN over {len(rs)} prompts (all six categories, {st['steps']} steps): the CNN's log P of its "
        f"pick went {fmt(score[0])} (N = 1) → {fmt(score[-1])} (N = {ns[-1]}); the checker's pass rate of those picks "
        f"{fmt(by_cnn[0], 2)} → {fmt(by_cnn[-1], 2)} (peak {fmt(by_cnn[peak], 2)} at N = {ns[peak]}), while picking by the "
        f"checker itself reaches {fmt(by_oracle[-1], 2)} ({_pm(gap, gap_se)} above the CNN's picks). {tail}"
    )
    fig = {
        "title": "Shapes hacking: best-of-N on the CNN, judged by the checker",
        "x_title": "N (best-of-N)",
        "y_title": "checker pass rate of the pick",
        "y2_title": "CNN log P of the pick",
        "x_log": True,
        "traces": [
            trace("picked by the CNN", ns, by_cnn),
            trace("picked by the checker", ns, by_oracle, dash="dash"),
            trace("CNN log P (search)", ns, score, axis="y2", dash="dot"),
        ],
    }
    table = {
        "columns": ["N", "CNN log P of the pick", "pass rate: CNN's pick", "pass rate: checker's pick"],
        "rows": [[n, fmt(s), fmt(a, 2), fmt(b, 2)] for n, s, a, b in zip(ns, score, by_cnn, by_oracle)],
    }
    data = {"n": ns, "cnn_score": score, "pass_cnn_pick": by_cnn, "pass_checker_pick": by_oracle, "peak_n": ns[peak]}
    data["upper_half"] = {"from_n": ns[mid], "gains": [[num(d), num(se)] for d, se in up]}  # score, CNN picks, checker picks
    setup_d = _setup_dict(ctx, verifier="supervised (CNN)", n=ns)
    return Finding(setup_d, data, finding, held, fig, table, verdict, reason)
