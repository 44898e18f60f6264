"""Your own velocity and reward, searched with SMC, checked against a closed form.

The model is a 2-D Gaussian mixture whose velocity is written out below in the library's
convention (x_t = (1 − t)·x0 + t·ε, v = ε − x0, t = 0 data, t = 1 noise). The reward is
the log-density of one mode, r(x) = log N(x; m, s²I). SMC with difference potentials
targets p0(x)·exp(r(x)/τ), which for this model is again a mixture, known in closed form:
the script compares the share of samples in each mode with it.

Run: python examples/own_model_smc.py   (about 2 s on a laptop CPU)
"""

import math

import torch

import dts_app
from dts_app.backends.mixture import GaussianMixture
from dts_app.search.fidelity import mode_shares, tilted_mixture

WEIGHTS = torch.tensor([0.7, 0.3], dtype=torch.float64)
MEANS = torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
VAR = 0.1  # isotropic variance of both modes


def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """v(x, t) = Σ_k r_k(x)·(E[ε | x, k] − E[x0 | x, k]) for x [B, 2] and t [B] (DESIGN §3)."""
    xd, tb = x.double(), t.double().reshape(-1, 1, 1)
    mu = (1 - tb) * MEANS  # [B, K, 2]: component means at time t
    s = (1 - tb) ** 2 * VAR + tb**2  # [B, 1, 1]: their variance S_k
    resid = xd.unsqueeze(1) - mu
    logr = WEIGHTS.log() - 0.5 * (resid**2 / s).sum(-1) - s.squeeze(-1).log()  # 2-D: log|S| = 2·log s, halved
    r = torch.softmax(logr, dim=1).unsqueeze(-1)
    x0 = MEANS + (1 - tb) * VAR / s * resid
    eps = tb / s * resid
    return (r * (eps - x0)).sum(1).to(x.dtype)


def reward(x: torch.Tensor) -> torch.Tensor:
    """log N(x; mode 1, VAR·I): higher near the second mode. Gets x0 [B, 2]; returns [B]."""
    return -((x - MEANS[1].float()) ** 2).sum(1) / (2 * VAR) - math.log(2 * math.pi * VAR)


def main() -> float:
    tau = 50.0
    result = dts_app.search(
        velocity, reward, shape=(2,), algorithm="smc", n=1024, steps=32, seed=0,
        potential="difference", temperature=tau, sde_gamma=1.0,
    )  # fmt: skip
    mix = GaussianMixture(WEIGHTS, MEANS, torch.full((2, 2), VAR, dtype=torch.float64))
    target = tilted_mixture(mix, 1, tau).weights  # closed form of p0·exp(r/τ)
    shares = mode_shares(mix, torch.stack([c.x0 for c in result.candidates]))
    err = float((shares - target).abs().max())
    print(f"SMC, τ = {tau}: mode shares {[round(float(v), 3) for v in shares]}, exact {[round(float(v), 3) for v in target]}")
    print(f"largest error {err:.3f}; p0's own shares {WEIGHTS.tolist()}")
    led = result.ledger
    print(f"ledger: {led.denoiser_nfe} NFEs (= 1024 particles × 32 steps), {led.verifier_calls} reward calls")
    assert err < 0.06, (shares, target)
    return err


if __name__ == "__main__":
    main()
