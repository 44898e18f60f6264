"""Real-model backends and verifiers on tiny random configs, fully offline on CPU.

Every model is built from a config, saved with ``save_pretrained`` (safetensors) to a
temporary directory and loaded back through the same ``from_pretrained`` path a user's
hub id or directory takes.
"""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from dts_app.__main__ import main
from dts_app.backends.base import Field
from dts_app.backends.clip_model import clip_for, preprocess
from dts_app.backends.dit import load_dit
from dts_app.backends.hf import HFLoadError
from dts_app.backends.t2i import load_t2i
from dts_app.backends.vp import VPTable, timestep_from_alpha_bar
from dts_app.config import ConfigError, SearchConfig
from dts_app.interpolant import linear_to_vp, vp_to_linear
from dts_app.ledger import Ledger
from dts_app.search import run_search, sample_paths
from dts_app.search.problem import build_problem
from dts_app.search.registry import ALGORITHMS, make_algorithm
from dts_app.testing import save_random_clip, save_random_dino, save_random_dit, save_random_sd3, save_random_sd_unet
from dts_app.verifiers.registry import verifiers_for

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    d = {
        "dit": save_random_dit(root / "dit"),
        "sd3": save_random_sd3(root / "sd3"),
        "unet": save_random_sd_unet(root / "unet"),
        "unet-v": save_random_sd_unet(root / "unet-v", prediction_type="v_prediction"),
        "clip": save_random_clip(str(root / "clip")),
        "dino": save_random_dino(str(root / "dino")),
    }
    d["vm"] = f"clip={d['clip']},dino={d['dino']}"
    return d


@pytest.fixture(scope="module")
def dit(dirs):
    return load_dit(str(dirs["dit"]), verifier_model=dirs["vm"])


@pytest.fixture(scope="module")
def t2i(dirs):
    return {k: load_t2i(str(dirs[k]), prompt="a red cat", verifier_model=dirs["vm"]) for k in ("sd3", "unet", "unet-v")}


# --- VP -> linear conversion --------------------------------------------------------
def test_timestep_from_alpha_bar_exact_at_table_and_log_interpolated():
    table = torch.linspace(0.999, 0.01, 50, dtype=torch.float64)
    tau = timestep_from_alpha_bar(table[[0, 7, 49]], table)
    assert torch.allclose(tau, torch.tensor([0.0, 7.0, 49.0], dtype=torch.float64), atol=1e-9)
    mid = torch.exp((torch.log(table[10]) + torch.log(table[11])) / 2)
    assert float(timestep_from_alpha_bar(mid.reshape(1), table)) == pytest.approx(10.5, abs=1e-9)


def test_vp_state_and_predictions_match_hand_computation():
    ab = torch.linspace(0.9999, 0.0001, 1000, dtype=torch.float64)
    vp = VPTable(ab, torch.device("cpu"))
    t = 0.3
    a, b = 0.7 / (0.49 + 0.09) ** 0.5, 0.3 / (0.49 + 0.09) ** 0.5  # sqrt(ᾱ), sqrt(1 − ᾱ) by hand
    assert a**2 == pytest.approx(float(linear_to_vp(t)), rel=1e-12)
    x0, eps = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    x_t = 0.7 * x0 + 0.3 * eps
    x_vp, tau, ta, tb = vp.to_vp(x_t, t)
    assert torch.allclose(x_vp, a * x0 + b * eps, atol=1e-12)  # (a + b)·x_t is the VP state
    assert float(ab[0] - (ab[0] - ab[-1]) * tau[0] / 999) == pytest.approx(a**2, rel=0.02)
    x0_hat = vp.x0_from_output(x_vp, eps, ta, tb, "epsilon")
    assert torch.allclose(x0_hat, x0, atol=1e-12)
    assert torch.allclose(vp.velocity(x_t, x0_hat, t), eps - x0, atol=1e-12)  # v = ε − x0
    v_vp = a * eps - b * x0
    assert torch.allclose(vp.x0_from_output(x_vp, v_vp, ta, tb, "v_prediction"), x0, atol=1e-12)


# --- DiT ----------------------------------------------------------------------------
def test_dit_velocity_is_guided_eps_converted(dit):
    k = 500
    ab = dit.scheduler.alphas_cumprod[k].double()
    t = float(vp_to_linear(ab))
    x = torch.randn(2, *dit.latent_shape)
    cond = dit.condition(7, 3.0)
    a, b = ab.sqrt().float(), (1 - ab).sqrt().float()
    x_vp = (a + b) * x
    with torch.no_grad():
        out = dit.transformer(torch.cat([x_vp, x_vp]), timestep=torch.full((4,), float(k)),
                              class_labels=torch.tensor([7, 7, 1000, 1000])).sample[:, :4]  # fmt: skip
    eps = out[2:] + 3.0 * (out[:2] - out[2:])
    x0 = (x_vp - b * eps) / a
    assert torch.allclose(dit.velocity(x, t, cond), eps - x0, atol=1e-4)


def test_dit_engine_euler_equals_ddim_pipeline(dit):
    """DDIM (η = 0) is exactly Euler on the linear grid t_k = vp_to_linear(ᾱ_τk)."""
    from diffusers import DiTPipeline

    pipe = DiTPipeline(transformer=dit.transformer, vae=dit.vae, scheduler=dit.scheduler)
    pipe.set_progress_bar_config(disable=True)
    steps, w = 5, 4.0
    gen = torch.Generator().manual_seed(3)
    img = pipe([3, 9], guidance_scale=w, num_inference_steps=steps, generator=gen, output_type="pt").images
    noise = torch.randn((2, *dit.latent_shape), generator=torch.Generator().manual_seed(3))
    taus = dit.scheduler.timesteps.tolist()
    grid = [float(vp_to_linear(dit.scheduler.alphas_cumprod[int(k)])) for k in taus] + [0.0]
    a0, b0 = dit.scheduler.alphas_cumprod[int(taus[0])].sqrt(), (1 - dit.scheduler.alphas_cumprod[int(taus[0])]).sqrt()
    x = noise / (a0 + b0)
    cond = torch.tensor([3, 9])
    for t, s in zip(grid[:-1], grid[1:]):
        v = torch.cat([dit.velocity(x[i : i + 1], t, dit.condition(int(cond[i]), w)) for i in range(2)])
        x = x + (s - t) * v
    ours = dit.decode(x)
    assert torch.allclose(ours, img.float(), atol=2e-4)


def test_dit_cfg_costs_two_nfes_per_image(dit):
    ledger = Ledger()
    f = Field(dit, dit.condition(1, 4.0), ledger)
    f(torch.randn(3, *dit.latent_shape), 0.5)
    assert ledger.denoiser_nfe == 6
    g = Field(dit, dit.condition(1, 1.0), ledger)
    g(torch.randn(3, *dit.latent_shape), 0.5)
    assert ledger.denoiser_nfe == 9
    assert dit.condition(None, 4.0).value == dit.null_class and dit.forwards_per_call(dit.condition(None, 4.0)) == 1


def test_dit_candidate_independent_of_batch(dit):
    cond = dit.condition(5, 2.0)
    x = torch.randn(4, *dit.latent_shape)
    full = dit.velocity(x, 0.6, cond)
    assert torch.allclose(full[2:3], dit.velocity(x[2:3], 0.6, cond), atol=1e-5)


def test_dit_labels_and_bad_class(dit):
    assert dit.default_target() == 207 and dit.targets()[3].label == "3: class3"
    with pytest.raises(ValueError, match="outside"):
        dit.condition(5000)


# --- text-to-image -----------------------------------------------------------------
def test_sd3_velocity_is_model_output_at_1000t(t2i):
    b = t2i["sd3"]
    cond = b.condition("a red cat", 2.5)
    pe = cond.value
    x = torch.randn(2, *b.latent_shape)
    with torch.no_grad():
        out = b.net(hidden_states=torch.cat([x, x]), timestep=torch.full((4,), 420.0),
                    encoder_hidden_states=torch.cat([pe.embeds.expand(2, -1, -1), pe.null_embeds.expand(2, -1, -1)]),
                    pooled_projections=torch.cat([pe.pooled.expand(2, -1), pe.null_pooled.expand(2, -1)])).sample  # fmt: skip
    want = out[2:] + 2.5 * (out[:2] - out[2:])
    assert torch.allclose(b.velocity(x, 0.42, cond), want, atol=1e-5)
    assert b.describe()["scheduler_shift"] == 3.0


def test_prompt_encoded_once_per_prompt(t2i):
    b = t2i["unet"]
    calls = []
    h = b.pipe.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        c1 = b.condition("a blue dog", 3.0)
        n = len(calls)
        c2 = b.condition("a blue dog", 3.0)
        Field(b, c2, Ledger())(torch.randn(2, *b.latent_shape), 0.5)
    finally:
        h.remove()
    assert n >= 1 and len(calls) == n and c1.value is c2.value


@pytest.mark.parametrize("key", ["unet", "unet-v"])
def test_unet_families_load_and_convert(t2i, key):
    b = t2i[key]
    assert b.family == "sd-unet" and b.prediction_type == ("epsilon" if key == "unet" else "v_prediction")
    x = torch.randn(2, *b.latent_shape)
    v = b.velocity(x, 0.5, b.condition("a red cat", 2.0))
    assert v.shape == x.shape and torch.isfinite(v).all()


def test_concept_obstacle_is_clip_text_embedding(t2i):
    b = t2i["sd3"]
    p = b.obstacle_points("concept", "a dog")
    assert p.shape == (1, 16)
    assert torch.allclose(p, clip_for(b).text_features(["a dog"]))
    assert float(p.norm()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="concept"):
        b.obstacle_points("point", (1.0,))


# --- verifiers ---------------------------------------------------------------------
def test_preprocess_matches_the_models_own_processor(dit):
    proc = clip_for(dit).processor
    img = torch.rand(2, 3, 48, 40)
    ours = preprocess(img, proc)
    theirs = proc(images=[(i.permute(1, 2, 0).numpy() * 255).round().astype("uint8") for i in img], return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape == (2, 3, 32, 32)
    assert float((ours - theirs).abs().mean()) < 0.05


@pytest.mark.parametrize("name", ["clip", "clip-zeroshot", "dino-agreement", "supervised", "self-supervised"])
def test_dit_verifiers_score(dit, name):
    from dts_app.verifiers.registry import build_verifier

    v = build_verifier(name, dit, 207)
    x0 = torch.randn(3, *dit.latent_shape)
    anchor = x0.clone()
    anchor[1] = float("nan")
    s = v.score(dit.decode(x0), anchor)
    assert s.shape == (3,) and torch.isfinite(s).all()
    if v.kind == "self_supervised":
        assert s.tolist() == pytest.approx([1.0, 0.0, 1.0], abs=1e-5)
    if name == "clip-zeroshot":
        assert float(s.max()) < 0  # a log-probability over 1000 classes


def test_verifier_names_per_backend():
    assert set(verifiers_for("dit")) >= {"clip", "clip-zeroshot", "dino-agreement", "supervised", "self-supervised"}
    assert set(verifiers_for("t2i")) >= {"clip", "dino-agreement", "supervised", "self-supervised"}
    assert "clip-zeroshot" not in verifiers_for("t2i")


def test_missing_verifier_model_is_a_config_error(dirs):
    b = load_dit(str(dirs["dit"]))
    with pytest.raises(ConfigError, match="--verifier-model"):
        build_problem(SearchConfig(backend="dit", preset=None, model=str(dirs["dit"]), verifier="clip", heldout=None), backend=b)


def test_loader_errors_are_one_line(tmp_path):
    with pytest.raises(HFLoadError, match="needs --model"):
        load_dit(None)
    with pytest.raises(HFLoadError, match="cannot load") as e:
        load_dit(str(tmp_path))
    assert "\n" not in str(e.value)
    with pytest.raises(HFLoadError, match="trust_remote_code"):
        from dts_app.backends.hf import load_pretrained

        load_pretrained(object, str(tmp_path), trust_remote_code=True)


# --- every algorithm, end to end ---------------------------------------------------
def _config(backend, model, vm, algorithm, verifier, heldout, prompt=None):
    return SearchConfig(
        backend=backend, preset=None, model=model, prompt=prompt, verifier_model=vm, target=None, condition=True,
        guidance=2.0, algorithm=algorithm, verifier=verifier, heldout=heldout, n=2, m=2, steps=4, iterations=1,
        sigma=0.75, delta_f=1, delta_b=2, budget=120, seed=0,
    )  # fmt: skip


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
@pytest.mark.parametrize("which", ["dit", "sd3", "unet"])
def test_every_algorithm_runs(dirs, dit, t2i, algorithm, which):
    if which == "dit":
        b, cfg = dit, _config("dit", str(dirs["dit"]), dirs["vm"], algorithm, "self-supervised", "clip-zeroshot")
    else:
        b = t2i[which]
        cfg = _config("t2i", str(dirs[which]), dirs["vm"], algorithm, "clip", "dino-agreement", prompt="a red cat")
    problem = build_problem(cfg, backend=b)
    res = run_search(problem, make_algorithm(algorithm, cfg), cfg.budget)
    assert res.best is not None and tuple(res.best.shape) == b.latent_shape  # the chosen clean latent
    assert 0 < res.ledger.denoiser_nfe <= 120 and res.ledger.denoiser_nfe % 2 == 0  # CFG: 2 per image
    assert res.ledger.decoder_calls >= 1


# --- CLI ---------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["dit", "sd3"])
def test_cli_search_with_real_backends(dirs, tmp_path, which):
    import json

    from dts_app.__main__ import main

    out = tmp_path / "o.json"
    common = ["--guidance", "3", "--n", "2", "--steps", "3", "--verifier-model", dirs["vm"], "--no-x0", "--json", str(out)]
    if which == "dit":
        argv = ["search", "--backend", "dit", "--model", str(dirs["dit"]), "--class", "207", "--verifier", "clip-zeroshot", "--heldout", "clip"]
    else:
        argv = ["search", "--backend", "t2i", "--model", str(dirs["sd3"]), "--prompt", "a red cat", "--verifier", "clip", "--heldout", "dino-agreement"]
    assert main(argv + common) == 0
    d = json.loads(out.read_text())
    assert d["ledger"]["denoiser_nfe"] == 2 * 3 * 2  # n · steps · 2 (CFG)
    assert d["ledger"]["decoder_calls"] == 2 and d["best_shape"] == [4, 8, 8]
    assert d["backend"]["name"] == which.replace("sd3", "t2i")


def test_cli_bad_model_is_one_line_error(tmp_path, capsys):
    from dts_app.__main__ import main

    rc = main(["search", "--backend", "dit", "--model", str(tmp_path / "nope"), "--verifier", "clip", "--heldout", "clip"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "\n" not in err


# --- devices and dtypes --------------------------------------------------------------
def test_dtype_and_device_choice():
    from dts_app.backends.hf import pick_device, pick_dtype

    assert pick_dtype(None, torch.device("cpu")) == torch.float32
    assert pick_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(HFLoadError, match="unknown dtype"):
        pick_dtype("fp8", torch.device("cpu"))
    with pytest.raises(HFLoadError, match="unknown device"):
        pick_device("tpu:x")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_dit_half_precision_on_cuda_matches_float32(dirs, dit):
    half = load_dit(str(dirs["dit"]), device="cuda")
    assert half.model_dtype in (torch.float16, torch.bfloat16) and half.dtype == torch.float32
    x = torch.randn(4, *dit.latent_shape)
    v32 = dit.velocity(x, 0.5, dit.condition(3, 4.0))
    v16 = half.velocity(x.cuda(), 0.5, half.condition(3, 4.0))
    assert v16.dtype == torch.float32 and torch.allclose(v16.cpu(), v32, atol=0.05, rtol=0.05)


def test_one_cached_t2i_model_serves_every_prompt(dirs, t2i):
    from dts_app.search.problem import backend_key

    cfg = _config("t2i", str(dirs["sd3"]), dirs["vm"], "best-of-n", "clip", None, prompt="a red cat")
    cache = {backend_key(cfg): t2i["sd3"]}
    probs = [
        build_problem(_config("t2i", str(dirs["sd3"]), dirs["vm"], "best-of-n", "clip", None, prompt=p), cache=cache)
        for p in ("a red cat", "a blue dog")
    ]
    assert probs[0].backend is probs[1].backend is t2i["sd3"]
    assert [p.cond.label for p in probs] == ["a red cat", "a blue dog"]
    assert [p.verifier.text for p in probs] == ["a red cat", "a blue dog"]


@pytest.mark.parametrize("which", ["dit", "sd3", "unet"])
def test_per_sample_times(dit, t2i, which):
    b = dit if which == "dit" else t2i[which]
    cond = b.condition(5, 2.0) if which == "dit" else b.condition("a red cat", 2.0)
    x = torch.randn(2, *b.latent_shape)
    both = b.velocity(x, torch.tensor([0.3, 0.8]), cond)
    one = torch.cat([b.velocity(x[:1], 0.3, cond), b.velocity(x[1:], 0.8, cond)])
    assert torch.allclose(both, one, atol=1e-5)


def test_concept_obstacle_features_are_differentiable_clip_embeddings(t2i):
    b = t2i["sd3"]
    space, f = b.obstacle_features("concept")
    x0 = torch.randn(2, *b.latent_shape, requires_grad=True)
    y = f(x0)
    assert space == "clip" and y.shape == (2, 16)
    assert torch.allclose(y.detach(), clip_for(b).image_features(b.decode(x0.detach())), atol=1e-5)
    (g,) = torch.autograd.grad(y[:, 0].sum(), x0)
    assert g.abs().sum() > 0


def test_concept_obstacle_search_runs(dirs, t2i):
    from dts_app.config import ObstacleSpec

    cfg = _config("t2i", str(dirs["sd3"]), dirs["vm"], "best-of-n", "clip", None, prompt="a red cat").replace(
        obstacles=(ObstacleSpec.parse("concept:a dog"),), avoid="repulsion", q_star=2.0
    )
    problem = build_problem(cfg, backend=t2i["sd3"])
    res = run_search(problem, make_algorithm("best-of-n", cfg), cfg.budget)
    assert res.best is not None and res.ledger.denoiser_nfe == 2 * 4 * 2
    assert all(n.D is not None and n.D >= 0 for n in res.tree.nodes)  # distances in CLIP space were measured
    # every check ran decode + CLIP on a state: counted (2 paths: 5 nodes each, + a push per step)
    assert res.ledger.obstacle_calls == 2 * 5 + 2 * 4


def test_backends_never_import_verifiers_and_fixtures_stay_out():
    """Dependency direction: verifiers → backends; test fixtures live in dts_app.testing."""
    import ast
    from pathlib import Path

    import dts_app

    root = Path(dts_app.__file__).parent
    for path in [*root.joinpath("backends").glob("*.py"), *root.joinpath("verifiers").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = "." * node.level + (node.module or "")
                assert "testing" not in mod, f"{path.name} imports {mod}"
                if path.parent.name == "backends":
                    assert "verifiers" not in mod, f"{path.name} imports {mod}"
            if isinstance(node, ast.FunctionDef):
                assert not node.name.startswith(("save_random", "save_tiny")), f"{path.name}: {node.name}"


def test_dit_and_t2i_share_the_latent_backend(dit, t2i):
    from dts_app.backends.latent import LatentBackend

    for b in (dit, *t2i.values()):
        assert isinstance(b, LatentBackend) and b.has_decoder and b.builtin_obstacles() == ()
        assert b.reference_mixture() is None and b.vae is not None and b.net is not None
        x0 = torch.zeros(2, *b.latent_shape)
        img = b.decode(x0)
        assert img.shape[:2] == (2, 3) and float(img.min()) >= 0 and float(img.max()) <= 1
    assert dit.shift_factor is None and t2i["sd3"].shift_factor == pytest.approx(0.0609)
    clip = clip_for(dit)
    assert clip_for(dit) is clip and ("clip", clip.source) in dit.cache  # one copy per backend


# --- every solver on every backend is finite; non-finite stops the run -------------
@pytest.mark.parametrize("solver", ["euler", "heun", "sde"])
@pytest.mark.parametrize("which", ["dit", "sd3", "unet", "unet-v"])
def test_every_solver_is_finite_on_every_real_backend(dirs, dit, t2i, which, solver):
    """Heun's last step lands on t = 0 where VP models cannot be evaluated (their
    conversion divides by t): it is an Euler step (EDM), so every sample is finite."""
    b = dit if which == "dit" else t2i[which]
    cfg = SearchConfig(backend="dit" if which == "dit" else "t2i", preset=None, n=2, steps=3, solver=solver,
                       guidance=2.0, prompt="a red cat")
    eng, beam = sample_paths(build_problem(cfg, backend=b, verifiers=False), 2)
    assert torch.isfinite(eng.clean(beam)).all()
    assert eng.ledger.denoiser_nfe == 2 * 2 * (3 * (2 if solver == "heun" else 1) - (1 if solver == "heun" else 0))


def test_cli_heun_on_a_vp_model_is_finite_and_exits_0(dirs, capsys):
    code = main(["sample", "--backend", "dit", "--model", str(dirs["dit"]), "--solver", "heun", "--n", "2", "--steps", "3"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and all(v is not None and math.isfinite(v) for row in out["samples"] for v in row)
