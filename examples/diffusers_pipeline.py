"""Search with a diffusers pipeline you already hold.

``dts_app.from_diffusers(pipe, class_label=..., guidance=...)`` wraps a loaded pipeline
object (DiT here; SD3-style and SD 1.5/2 pipelines take ``prompt=...``). The wrapped model
knows its latent shape and decodes with the pipeline's VAE, so the reward gets images
``[B, 3, H, W]`` in [0, 1]. To stay offline and fast, this script builds a tiny DiT with
random weights from configs; with a real one you would write instead::

    pipe = DiTPipeline.from_pretrained("facebook/DiT-XL-2-256", torch_dtype=torch.float16).to("cuda")

Run: python examples/diffusers_pipeline.py   (a few seconds on a CPU)
"""

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiTPipeline, DiTTransformer2DModel

import dts_app


def tiny_dit() -> DiTPipeline:
    """A random 8×8-pixel DiT pipeline (4×4 latents, 10 classes) built from configs."""
    with torch.random.fork_rng():  # leave the global random state as it was
        torch.manual_seed(0)
        transformer = DiTTransformer2DModel(
            num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=1,
            sample_size=4, patch_size=2, num_embeds_ada_norm=10,
        )  # fmt: skip
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            norm_num_groups=8, layers_per_block=1,
        )  # fmt: skip
    labels = {k: name for k, name in enumerate("plane car bird cat deer dog frog horse ship truck".split())}
    return DiTPipeline(transformer, vae, DDIMScheduler(clip_sample=False), id2label=labels)


def redness(images: torch.Tensor) -> torch.Tensor:
    """A plain reward on decoded images [B, 3, H, W] in [0, 1]: red minus the other channels."""
    return images[:, 0].mean(dim=(1, 2)) - images[:, 1:].mean(dim=(1, 2, 3))


def main() -> dict:
    pipe = tiny_dit()
    model = dts_app.from_diffusers(pipe, class_label=3, guidance=2.0)  # "cat", classifier-free guidance 2
    print(f"model: latents {model.shape}, condition {model.cond.label!r}, decoder: {model.has_decoder}")

    out = {}
    for algorithm, knobs in [("best-of-n", dict(n=4)), ("paths", dict(n=2, m=2)), ("tree", dict(n=2, m=2, sde_gamma=1.0))]:
        r = dts_app.search(model, redness, algorithm=algorithm, steps=8, budget=64, seed=0, **knobs)
        led = r.ledger
        best_image = r.images[[c.node_id for c in r.candidates].index(r.best_node)]  # decoded candidates, [K, 3, H, W]
        print(
            f"{algorithm:>10}: best redness {r.best_score:+.4f}, {led.denoiser_nfe} NFEs (2 per image with guidance), "
            f"{led.decoder_calls} VAE decodes, {led.verifier_calls} reward calls; best image {tuple(best_image.shape)}"
        )
        assert led.denoiser_nfe <= 64 and abs(float(redness(best_image[None])) - r.best_score) < 1e-5
        out[algorithm] = r.best_score

    plain = dts_app.sample(model, n=2, steps=8)  # no search: samples and their decoded images
    print(f"plain samples {tuple(plain.samples.shape)}, images {tuple(plain.images.shape)}")
    return out


if __name__ == "__main__":
    main()
