"""The public Python API (``dts_app.sample``, ``dts_app.search``, ``dts_app.search_noise``
and the adapters) against closed forms: a Gaussian-mixture velocity and plain Python
rewards, with exact ledgers, the tilted law of SMC, determinism and one clear error per
bad knob. Diffusers pipelines are tiny ones built from configs (no download)."""

from __future__ import annotations

import json
import math
import os
import threading

import pytest
import torch

import dts_app
from dts_app.backends.mixture import GaussianMixture, make_preset
from dts_app.config import ConfigError, SearchConfig
from dts_app.search import build_problem, make_algorithm, run_search
from dts_app.search.fidelity import mode_shares, tilted_mixture

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MIX = make_preset("trap")  # common, hazard, and the rare "prize" mode (index 2)
PRIZE = MIX.restrict([2])


class Counted:
    """A plain reward ``log N(x; μ_prize, Σ_prize)`` that counts the rows it scores."""

    def __init__(self, fn=None):
        self.fn = fn or (lambda x: PRIZE.log_prob(x, 0.0))
        self.calls = self.rows = 0

    def __call__(self, x):
        self.calls += 1
        self.rows += len(x)
        return self.fn(x)


@pytest.fixture(autouse=True)
def no_global_torch_state_leaks():
    """The API draws from its own seeded streams and changes no process-wide torch setting."""
    before = (torch.random.get_rng_state(), torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled())
    yield
    after = (torch.random.get_rng_state(), torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled())
    assert torch.equal(before[0], after[0]), "the global random state changed"
    assert before[1:] == after[1:]


def _search(**kw):
    reward = kw.pop("reward", None) or Counted()
    return dts_app.search(MIX.velocity, reward, shape=(2,), **kw), reward


# --- the names ------------------------------------------------------------------------------
def test_public_names_are_at_the_top_level_and_search_is_callable():
    import inspect

    from dts_app import search

    for name in ("sample", "search", "search_noise", "from_diffusers", "from_eps", "from_x0", "from_velocity"):
        assert callable(getattr(dts_app, name)), name
    assert search is dts_app.search  # also the engine's package: calling it runs dts_app.api.search
    params = inspect.signature(dts_app.search).parameters
    assert list(params)[:2] == ["velocity", "reward"] and "knobs" in params
    with pytest.raises(AttributeError):
        dts_app.no_such_name  # noqa: B018


# --- SMC samples the tilted law -----------------------------------------------------------------
@pytest.mark.parametrize("tau", [20.0, 60.0])
def test_smc_with_a_plain_velocity_and_reward_samples_the_tilted_law(tau):
    """difference potentials telescope to exp(r/τ): the finals sample p0·N(·; μ_c, Σ_c)^{1/τ},
    a closed-form mixture; with 1,024 particles every mode share is within 0.06."""
    r, reward = _search(algorithm="smc", n=1024, steps=32, potential="difference", temperature=tau, sde_gamma=1.0)
    shares = mode_shares(MIX, torch.stack([c.x0 for c in r.candidates]))
    target = tilted_mixture(MIX, 2, tau).weights
    assert len(r.candidates) == 1024
    assert float((shares - target).abs().max()) < 0.06, (shares, target)
    assert r.ledger.denoiser_nfe == 1024 * 32
    assert reward.rows == r.ledger.verifier_calls and r.ledger.diagnostic_calls == 0


def test_api_search_is_the_cli_search():
    """The same velocity, reward and knobs through the CLI's config path give the same result."""
    r, _ = _search(algorithm="smc", n=64, steps=16, temperature=5.0, sde_gamma=1.0, seed=3)
    cfg = SearchConfig(preset="trap", algorithm="smc", n=64, steps=16, temperature=5.0, sde_gamma=1.0, seed=3, target=2, heldout="")
    p = build_problem(cfg)
    p.trace_scores = False
    ref = run_search(p, make_algorithm("smc", cfg))
    assert [c.x0.tolist() for c in r.candidates] == [c.x0.tolist() for c in ref.candidates]
    assert r.ledger.to_dict() == ref.ledger.to_dict()


# --- exact ledgers --------------------------------------------------------------------------------
S = 8
SMC_SCORED = 5  # resample_from = 0.5: t = 0.5, 0.375, 0.25, 0.125 and t = 0
LEDGERS = {  # algorithm, knobs -> (denoiser NFEs, verifier calls) in closed form
    "best-of-n": (dict(n=6), 6 * S, 6),
    "best-of-n-heun": (dict(n=5, solver="heun"), 5 * (2 * S - 1), 5),
    "zero-order": (dict(n=3, iterations=2, lam=0.4), (1 + 2 * 3) * S, 1 + 2 * 3),
    # N·(1 + 2) to σ = 0.75 (grid index 2), then 3 rounds of N·M branches: (f, b) = (0, 4), (2, 6), (4, 8);
    # each branch costs its re-noised velocity plus b − f steps (the step onto t = 0 is free)
    "paths": (dict(n=4, m=2, sigma=0.75, delta_f=2, delta_b=4), 4 * 3 + 8 * (1 + 4) + 8 * (1 + 4) + 8 * (1 + 3), 3 * 8),
    "smc": (dict(n=32, temperature=1.0, sde_gamma=1.0), 32 * S, 32 * SMC_SCORED),
}


@pytest.mark.parametrize("case", list(LEDGERS))
def test_exact_ledgers(case):
    knobs, nfe, calls = LEDGERS[case]
    heldout = Counted(lambda x: -x.norm(dim=1))
    r, reward = _search(algorithm=case.split("-heun")[0], steps=S, heldout=heldout, **knobs)
    assert r.message == "finished" and r.error is None
    assert r.ledger.denoiser_nfe == nfe
    assert r.ledger.verifier_calls == calls == reward.rows
    assert r.ledger.heldout_calls == heldout.rows == calls
    assert r.ledger.diagnostic_calls == 0 and r.ledger.decoder_calls == 0


@pytest.mark.parametrize("backup", ["max", "soft"])
def test_tree_ledger_counts_one_nfe_per_state_above_t0(backup):
    """Tree search draws its shape at random; with Euler every state at t > 0 costs exactly
    one evaluation and every rollout one reward call (n·m rollouts without a budget)."""
    r, reward = _search(algorithm="tree", n=3, m=2, steps=S, backup=backup, sde_gamma=1.0)
    states = sum(1 for node in r.tree.nodes if node.t > 0)
    assert r.ledger.denoiser_nfe == states
    assert r.ledger.verifier_calls == reward.rows == 3 * 2


def test_trace_scores_are_off_unless_asked():
    off, reward = _search(algorithm="paths", n=4, m=2, steps=S)
    assert reward.rows == off.ledger.verifier_calls == 24
    on, reward = _search(algorithm="paths", n=4, m=2, steps=S, trace_scores=True)
    assert on.ledger.diagnostic_calls == len(on.tree.nodes)
    assert reward.rows == on.ledger.verifier_calls + on.ledger.diagnostic_calls
    assert [c.x0.tolist() for c in on.candidates] == [c.x0.tolist() for c in off.candidates]


def test_budget_caps_the_search():
    r, _ = _search(algorithm="best-of-n", n=8, steps=S, budget=20)  # whole paths only: 2 of them
    assert r.ledger.denoiser_nfe == 16 and len(r.candidates) == 2
    r, _ = _search(algorithm="tree", n=4, m=4, steps=S, budget=50, sde_gamma=1.0)
    assert r.ledger.denoiser_nfe <= 50 and r.best is not None


# --- determinism -----------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm,knobs", [("smc", dict(sde_gamma=1.0)), ("tree", dict(m=2, sde_gamma=1.0)), ("zero-order", {})])
def test_same_seed_same_result(algorithm, knobs):
    def run(seed):
        r, _ = _search(algorithm=algorithm, n=8, steps=S, seed=seed, **knobs)
        return json.dumps(r.to_dict())

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_sde_gamma_reaches_the_stochastic_steps():
    """γ is a setting of the run (the engine's stochastic steps), never silently dropped."""
    a, _ = _search(algorithm="smc", n=8, steps=S, sde_gamma=0.5)
    b, _ = _search(algorithm="smc", n=8, steps=S, sde_gamma=2.0)
    assert not torch.equal(a.best, b.best)


def test_candidate_i_of_best_of_n_does_not_depend_on_n():
    a, _ = _search(n=3, steps=S)
    b, _ = _search(n=7, steps=S)
    assert [c.x0.tolist() for c in a.candidates] == [c.x0.tolist() for c in b.candidates[:3]]


# --- errors ----------------------------------------------------------------------------------------
def test_an_unknown_knob_is_one_clear_value_error():
    with pytest.raises(ValueError) as e:
        _search(algorithm="smc", temprature=1.0)
    msg = str(e.value)
    assert "\n" not in msg and "'temprature'" in msg and "did you mean 'temperature'" in msg
    for knob in ("temperature", "potential", "ess_threshold"):  # the registry's knobs of smc
        assert knob in msg
    with pytest.raises(ValueError, match="'m' is a knob of paths, tree, not of best-of-n"):
        _search(algorithm="best-of-n", m=4)


@pytest.mark.parametrize(
    "kw,message",
    [
        (dict(algorithm="smc", temperature=-1.0), "--temperature: -1 is outside"),
        (dict(algorithm="tree", m=0), "--m: 0 is outside"),
        (dict(algorithm="tree", sde_gamma=0.0), "tree search needs γ > 0"),
        (dict(algorithm="paths", delta_f=4, delta_b=2), "--delta-b: must exceed"),
        (dict(steps=float("nan")), "--steps: must be a finite number"),
        (dict(algorithm="annealing"), "--algorithm: 'annealing' is not one of"),
        (dict(obstacles="point:1,2,3"), "--obstacle: point needs 2 coordinates"),
    ],
)
def test_bad_values_get_the_cli_messages(kw, message):
    with pytest.raises(ConfigError, match=message):
        _search(**kw)


def test_shape_and_reward_errors_are_clear():
    with pytest.raises(ValueError, match="shape is required"):
        dts_app.search(MIX.velocity, Counted())
    with pytest.raises(ValueError, match="one score per row"):
        _search(reward=lambda x: x)  # [B, 2], not [B]
    with pytest.raises(ValueError, match="returned shape"):
        dts_app.sample(lambda x, t: x[:, :1], shape=(2,), n=2, steps=2)


def test_a_nan_stops_the_search_and_keeps_what_was_found():
    calls = []

    def velocity(x, t):
        calls.append(len(x))
        v = MIX.velocity(x, t)
        return v * float("nan") if len(calls) > S else v  # the pivot's path finishes, then NaN

    with pytest.warns(RuntimeWarning, match="non-finite velocity"):
        r = dts_app.search(velocity, Counted(), shape=(2,), algorithm="zero-order", n=2, iterations=2, steps=S)
    assert "non-finite velocity" in r.error and r.message == r.error
    assert len(r.candidates) == 1 and r.best is not None and r.best_score == r.candidates[0].score


def test_a_problem_built_by_hand_takes_a_plain_reward():
    """The engine's own entry point takes plain functions too (no AttributeError 'anchor_t')."""
    from dts_app.backends.base import Condition
    from dts_app.backends.gmm import GMMBackend
    from dts_app.search import Problem

    reward = Counted()
    p = Problem(GMMBackend("trap"), Condition(), verifier=reward, steps=S, trace_scores=False)
    r = run_search(p, make_algorithm("best-of-n", SearchConfig(n=4)))
    assert r.ledger.verifier_calls == reward.rows == 4 and r.best_score == max(c.score for c in r.candidates)


def test_a_nan_in_plain_sampling_raises_the_clear_error():
    with pytest.raises(dts_app.NonFiniteError, match="non-finite velocity .* at t = 1"):
        dts_app.sample(lambda x, t: x * float("nan"), shape=(2,), n=2, steps=4)


def test_stop_and_progress_synchronise_on_events():
    stop, seen = threading.Event(), []

    def progress(snap):
        seen.append(snap.step)
        if len(seen) == 3:
            stop.set()

    r, _ = _search(algorithm="smc", n=16, steps=S, sde_gamma=1.0, progress=progress, stop=stop)
    assert r.message == "stopped" and stop.is_set()
    assert r.ledger.denoiser_nfe < 16 * S


# --- sampling and obstacles ---------------------------------------------------------------------------
def test_sample_shapes_ledger_and_obstacle_metrics():
    out = dts_app.sample(MIX.velocity, shape=(2,), n=64, steps=S, seed=1)
    assert out.samples.shape == (64, 2) and out.ledger.denoiser_nfe == 64 * S and out.metrics["n_final"] == 64
    hazard = MIX.means[1].float()
    text = dts_app.sample(MIX.velocity, shape=(2,), n=64, steps=S, seed=1, obstacles="point:1.6,0.4", avoid="prune", q_star=0.9)
    fn = dts_app.sample(
        MIX.velocity, shape=(2,), n=64, steps=S, seed=1, obstacles=[lambda x0: (x0 - hazard).norm(dim=1)], avoid="prune", q_star=0.9
    )
    assert text.metrics["collision_rate"] == 0.0 and text.metrics["pruned"] > 0
    assert torch.equal(text.samples, fn.samples)  # a distance function is the same obstacle
    assert fn.ledger.obstacle_calls > 0 and text.ledger.obstacle_calls == 0
    plain = (out.samples - hazard).norm(dim=1).lt(0.9).float().mean()
    pushed = dts_app.sample(
        MIX.velocity, shape=(2,), n=64, steps=S, seed=1, obstacles=lambda x0: (x0 - hazard).norm(dim=1), avoid="repulsion",
        q_star=0.9, eta=5.0,
    )  # fmt: skip
    assert pushed.metrics["collision_rate"] < float(plain)


def test_search_with_obstacles_reports_metrics():
    r, _ = _search(algorithm="best-of-n", n=8, steps=S, obstacles=["point:1.6,0.4@q=0.9"], avoid="revert", sde_gamma=1.0)
    assert r.metrics["collision_rate"] is not None and r.obstacles[0]["q_star"] == 0.9


# --- adapters -------------------------------------------------------------------------------------------
def test_from_x0_and_from_eps_convert_to_the_linear_velocity():
    t = torch.tensor([0.2, 0.5, 0.8])
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    exact = MIX.velocity(x, t)
    lin = dts_app.from_x0(lambda x, t: MIX.posterior_means(x, t)[0].float(), shape=(2,))
    assert torch.allclose(lin(x, t), exact, atol=1e-5)

    # a VP ε-model of p0 = N(0, s²·I) with ᾱ(τ) log-linear between table entries
    s2 = 0.3
    table = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    gauss = GaussianMixture(torch.ones(1, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64), torch.full((1, 2), s2, dtype=torch.float64))

    def eps(x_vp, tau):
        ell = -torch.log(table)
        i = tau.double().floor().long().clamp(0, len(table) - 2)
        ab = torch.exp(-(ell[i] + (tau.double() - i) * (ell[i + 1] - ell[i]))).reshape(-1, 1)
        return ((1 - ab).sqrt() / (ab * s2 + 1 - ab) * x_vp).float()  # E[ε | x_vp] for x0 ~ N(0, s²·I)

    vp = dts_app.from_eps(eps, table, shape=(2,))
    assert torch.allclose(vp(x, t), gauss.velocity(x, t), atol=1e-4)


def test_black_box_noise_search_counts_generate_calls():
    target = torch.tensor([0.5, -0.5, 0.25])
    seen = []

    def generate(z):
        seen.append(len(z))
        return torch.tanh(z)

    def reward(y):
        return -(y - target).norm(dim=1)

    bon = dts_app.search_noise(generate, reward, shape=(3,), n=16, seed=2)
    assert sum(seen) == bon.ledger.decoder_calls == bon.ledger.denoiser_nfe == bon.ledger.verifier_calls == 16
    assert torch.equal(bon.images[0], torch.tanh(bon.candidates[0].x0))  # x0 is the noise, images its output
    seen.clear()
    zo = dts_app.search_noise(generate, reward, shape=(3,), algorithm="zero-order", n=4, iterations=5, lam=0.3, budget=17, seed=2)
    assert sum(seen) == zo.ledger.decoder_calls == zo.ledger.denoiser_nfe == 17  # 1 pivot + 4 full iterations
    again = dts_app.search_noise(generate, reward, shape=(3,), algorithm="zero-order", n=4, iterations=5, lam=0.3, budget=17, seed=2)
    assert torch.equal(zo.best, again.best)
    with pytest.raises(ValueError, match="needs intermediate states"):
        dts_app.search_noise(generate, reward, shape=(3,), algorithm="smc")


# --- diffusers pipelines passed as objects -----------------------------------------------------------------
def _tiny_dit():
    from diffusers import AutoencoderKL, DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    with torch.random.fork_rng():
        torch.manual_seed(0)
        transformer = DiTTransformer2DModel(
            num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=1, sample_size=4,
            patch_size=2, num_embeds_ada_norm=10,
        )  # fmt: skip
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",),
            up_block_types=("UpDecoderBlock2D",), norm_num_groups=8, layers_per_block=1,
        )  # fmt: skip
    return DiTPipeline(transformer=transformer, vae=vae, scheduler=DDIMScheduler(clip_sample=False), id2label={3: "cat, kitty"})


def test_from_diffusers_runs_a_dit_pipeline_object():
    pytest.importorskip("diffusers")
    pipe = _tiny_dit()
    model = dts_app.from_diffusers(pipe, class_label=3, guidance=2.0)
    assert model.shape == (4, 4, 4) and model.has_decoder and model.cond.label == "cat"
    assert model.with_condition(class_label=4).cond.value == 4 and model.with_condition(guidance=1.0).cond.value == 3
    seen = []

    def reward(images):
        seen.append(images.shape)
        assert images.min() >= 0 and images.max() <= 1
        return images.mean(dim=(1, 2, 3))

    r = dts_app.search(model, reward, n=2, steps=3, seed=0)
    assert seen == [(2, 3, 4, 4)] and r.images.shape == (2, 3, 4, 4)
    assert r.ledger.denoiser_nfe == 2 * 3 * 2 and r.ledger.decoder_calls == 2  # CFG: 2 forwards per image
    with pytest.raises(ValueError, match="it takes class_label, guidance"):
        dts_app.from_diffusers(pipe, prompt="a cat")
    with pytest.raises(ValueError, match="part of the model's condition"):
        dts_app.search(model, reward, n=2, steps=3, guidance=4.0)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    """Tiny random DiT, SD3-style and SD-UNet pipeline directories (safetensors)."""
    pytest.importorskip("transformers")
    from dts_app.testing import save_random_dit, save_random_sd3, save_random_sd_unet

    root = tmp_path_factory.mktemp("pipes")
    with torch.random.fork_rng():
        return {"dit": save_random_dit(root / "dit", sample_size=4, layers=1),
                "sd3": save_random_sd3(root / "sd3", sample_size=4),
                "unet": save_random_sd_unet(root / "unet")}  # fmt: skip


def _load(dirs, name):
    from diffusers import DiffusionPipeline

    if name == "unet":
        return DiffusionPipeline.from_pretrained(dirs[name], safety_checker=None, requires_safety_checker=False)
    if name == "sd3":
        return DiffusionPipeline.from_pretrained(dirs[name], text_encoder_3=None, tokenizer_3=None)
    return DiffusionPipeline.from_pretrained(dirs[name])


def test_from_diffusers_computes_what_the_cli_backends_compute(tiny_dirs):
    from dts_app.backends.dit import load_dit
    from dts_app.backends.t2i import load_t2i

    x = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.9, 0.4])
    dit = load_dit(str(tiny_dirs["dit"]), device="cpu")
    ours = dts_app.from_diffusers(_load(tiny_dirs, "dit"), class_label=5, guidance=3.0)
    assert torch.equal(ours(x, t), dit.velocity(x, t, dit.condition(5, 3.0)))
    for name, size in (("sd3", 4), ("unet", 8)):
        xs = torch.randn(2, 4, size, size, generator=torch.Generator().manual_seed(2))
        ref = load_t2i(str(tiny_dirs[name]), prompt="a red cat", device="cpu")
        ours = dts_app.from_diffusers(_load(tiny_dirs, name), prompt="a red cat", guidance=2.0)
        assert ours.shape == (4, size, size)
        assert torch.allclose(ours(xs, t), ref.velocity(xs, t, ref.condition("a red cat", 2.0)), atol=1e-6), name
        assert math.isfinite(float(ours.decode(xs[:1]).mean()))


def test_black_box_search_over_a_pipelines_own_sampler(tiny_dirs):
    """search_noise drives an SD pipeline's own __call__ (its scheduler, its steps) through
    ``latents=``: the pipeline is a black box, counted by calls."""
    pipe = _load(tiny_dirs, "unet")
    pipe.set_progress_bar_config(disable=True)
    calls = []

    def generate(z):  # noise [B, 4, 8, 8] -> images [B, 3, 8, 8] in [0, 1]
        calls.append(len(z))
        return pipe("a red cat", latents=z, num_images_per_prompt=len(z), num_inference_steps=2, output_type="pt").images

    def redness(images):
        return images[:, 0].mean(dim=(1, 2)) - images[:, 1:].mean(dim=(1, 2, 3))

    r = dts_app.search_noise(generate, redness, shape=(4, 8, 8), algorithm="zero-order", n=2, iterations=2, max_batch=2)
    assert sum(calls) == r.ledger.decoder_calls == r.ledger.denoiser_nfe == 5 and max(calls) <= 2
    assert r.images.shape == (5, 3, 8, 8) and r.best.shape == (4, 8, 8)  # every noise tried is a candidate
    assert r.best_score == max(c.score for c in r.candidates)


# --- the docstrings' examples run ------------------------------------------------------------------------
@pytest.mark.parametrize("module", ["dts_app", "dts_app.api", "dts_app.api_noise", "dts_app.adapters"])
def test_docstring_examples(module):
    import doctest
    import importlib

    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0
