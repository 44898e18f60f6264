"""The embedded digits backend: shipped weights, verifiers, CFG cost, training command."""

import json

import pytest
import torch

from dts_app.__main__ import main
from dts_app.backends.digits import DigitsBackend
from dts_app.config import SearchConfig
from dts_app.search import Engine, Problem, run_search
from dts_app.search.problem import build_problem
from dts_app.search.registry import ALGORITHMS, make_algorithm
from dts_app.verifiers.registry import build_verifier


@pytest.fixture(scope="module")
def backend():
    return DigitsBackend()


def _samples(backend, k, n, guidance=2.0, steps=16, seed=0):
    p = Problem(backend, backend.condition(k, guidance), None, steps=steps, seed=seed, trace_scores=False)
    eng = Engine(p)
    beam = eng.start([(i,) for i in range(n)])
    for beam in eng.solve(beam):
        pass
    return eng, eng.clean(beam)


def test_shipped_weights_load_offline_and_are_small(backend):
    from dts_app.backends.digits import DEFAULT_DIR

    files = [p for p in DEFAULT_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 20e6
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
    assert backend.latent_shape == (1, 8, 8) and backend.data_kind == "image"


def test_shapes_ranges_and_cfg_cost(backend):
    eng, x0 = _samples(backend, 3, 6, guidance=2.0, steps=8)
    assert x0.shape == (6, 1, 8, 8)
    img = backend.decode(x0)
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    assert eng.ledger.denoiser_nfe == 6 * 8 * 2  # classifier-free guidance: 2 forwards per image
    eng1, _ = _samples(backend, 3, 6, guidance=1.0, steps=8)
    assert eng1.ledger.denoiser_nfe == 6 * 8
    # guidance 0 is the unconditional model exactly (v_u + 0·(v_c − v_u)), at one forward
    eng0, _ = _samples(backend, 3, 6, guidance=0.0, steps=8)
    assert eng0.ledger.denoiser_nfe == 6 * 8
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    v0 = backend.velocity(x, 0.7, backend.condition(3, 0.0))
    vu = backend.velocity(x, 0.7, backend.condition(None))
    v2 = backend.velocity(x, 0.7, backend.condition(3, 2.0))
    v1 = backend.velocity(x, 0.7, backend.condition(3, 1.0))
    assert torch.equal(v0, vu) and torch.allclose(v2, vu + 2.0 * (v1 - vu), atol=1e-5)


def test_per_class_recognition(backend):
    oracle = backend.classifier("oracle")
    hits = 0
    for k in range(10):
        _, x0 = _samples(backend, k, 8, steps=16, seed=k)
        with torch.no_grad():
            hits += int((oracle(x0.clamp(-1, 1)).argmax(1) == k).sum())
    assert hits / 80 >= 0.85


def test_verifier_scores_ordered_on_real_digits(backend):
    s = backend.split()
    three = s.x_heldout[s.y_heldout == 3][:10]
    seven = s.x_heldout[s.y_heldout == 7][:10]
    for name in ("supervised", "oracle"):
        v = build_verifier(name, backend, 3)
        a, b = v.score(backend.decode(three)), v.score(backend.decode(seven))
        assert float(a.mean()) > float(b.mean()) + 2.0
        assert (a > -1.0).float().mean() > 0.8
    agree = build_verifier("self-supervised", backend, 3)
    x = backend.decode(three)
    same = agree.score(x, three)
    other = agree.score(x, seven)
    # cosine of CNN features (the paper's form): 1 for the same image, less for another digit
    assert torch.allclose(same, torch.ones(10), atol=1e-4) and (other < 0.8).all()


def test_classifiers_are_accurate_on_heldout(backend):
    s = backend.split()
    for which in ("supervised", "oracle"):
        with torch.no_grad():
            acc = (backend.classifier(which)(s.x_heldout).argmax(1) == s.y_heldout).float().mean()
        assert float(acc) > 0.9


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_on_digits(backend, name):
    cfg = SearchConfig(backend="digits", preset=None, target=5, condition=True, guidance=2.0, algorithm=name,
                       verifier="supervised", heldout="oracle", n=3, m=2, steps=6, iterations=1, sigma=0.5,
                       delta_f=1, delta_b=2, budget=200)  # fmt: skip
    r = run_search(build_problem(cfg, backend=backend), make_algorithm(name, cfg), 200)
    assert r.ledger.denoiser_nfe <= 200 and r.best is not None
    assert r.best.shape == (1, 8, 8) and r.heldout_score is not None


def test_avoid_class_obstacle(backend):
    pts = backend.obstacle_points("class", 7)
    s = backend.split()
    assert pts.shape[1:] == (1, 8, 8) and len(pts) == int((s.y_train == 7).sum())
    cfg = SearchConfig(backend="digits", preset=None, target=7, condition=True, n=8, steps=8, avoid="prune",
                       q_star=0.1, obstacles=(__import__("dts_app.config", fromlist=["x"]).ObstacleSpec("class", 7),))  # fmt: skip
    r = run_search(build_problem(cfg, backend=backend), make_algorithm("best-of-n", cfg))
    assert r.obstacles[0]["n_points"] == len(pts)


def test_cli_sample_images(tmp_path):
    out = tmp_path / "d.json"
    assert main(["sample", "--backend", "digits", "--class", "3", "--n", "4", "--steps", "8", "--guidance", "2", "--seed", "0", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    imgs = torch.tensor(d["images"])
    assert imgs.shape == (4, 8, 8) and float(imgs.min()) >= 0 and float(imgs.max()) <= 1
    assert d["ledger"]["denoiser_nfe"] == 4 * 8 * 2


def test_train_command_tiny(tmp_path):
    out = tmp_path / "model"
    assert main(["train-digits", "--out", str(out), "--steps", "3", "--classifier-steps", "3", "--batch", "16", "--tiny"]) == 0
    b = DigitsBackend(str(out))
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").exists()
    summary = json.loads((out / "training.json").read_text())
    assert summary["steps"] == 3 and summary["tiny"]
    v = b.velocity(torch.zeros(2, 1, 8, 8), 0.5, b.condition(1, 2.0))
    assert v.shape == (2, 1, 8, 8) and torch.isfinite(v).all()
    assert main(["train-digits", "--out", str(out), "--steps", "0"]) == 2


def test_traced_forward_is_exactly_the_eager_unet(backend):
    """The shipped UNet runs traced, and the trace equals the eager forward bit for bit at
    batch sizes other than the probe's (CFG doubles the batch)."""
    from dts_app.backends.digits import NULL_CLASS, _Forward

    assert isinstance(backend._net, torch.jit.ScriptModule)
    eager = _Forward(backend.unet)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for b in (1, 8, 33):
            x, ts = torch.randn(b, 1, 8, 8, generator=g), torch.rand(b, generator=g) * 1000
            labels = torch.randint(0, NULL_CLASS + 1, (b,), generator=g)
            assert torch.equal(backend._net(x, ts, labels), eager(x, ts, labels))


def test_fast_forward_falls_back_when_a_trace_is_not_exact(monkeypatch):
    """A network whose output depends on a Python branch over the batch size cannot be
    traced faithfully: the check on a second batch size catches it and eager is used."""
    from types import SimpleNamespace

    from dts_app.backends.digits import _Forward, fast_forward

    class Branchy(torch.nn.Module):
        def forward(self, x, ts, class_labels=None):
            return SimpleNamespace(sample=x * 2 if x.shape[0] > 4 else x + 1)

    assert isinstance(fast_forward(Branchy(), (1, 8, 8)), _Forward)
    monkeypatch.setenv("DTS_DIGITS_TRACE", "0")
    assert isinstance(fast_forward(torch.nn.Identity(), (1, 8, 8)), _Forward)
