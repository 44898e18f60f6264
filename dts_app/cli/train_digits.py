"""``train-digits``: train the embedded digits model and its two classifiers."""

from __future__ import annotations

from .common import fail

HELP = "Train the class-conditional digits flow model and its classifiers (safetensors) into --out."


def add_parser(sub) -> None:
    p = sub.add_parser("train-digits", help=HELP, description=HELP)
    p.add_argument("--out", default="assets/digits", help="Output directory. Default: assets/digits.")
    p.add_argument("--steps", type=int, default=3000, help="Flow-matching training steps. Default: 3000.")
    p.add_argument("--classifier-steps", type=int, default=1500, help="Training steps of each classifier. Default: 1500.")
    p.add_argument("--batch", type=int, default=128, help="Batch size. Default: 128.")
    p.add_argument("--seed", type=int, default=0, help="Seed of all randomness. Default: 0.")
    p.add_argument("--tiny", action="store_true", help="A tiny UNet (for tests and smoke runs).")
    p.set_defaults(run=main)


def main(args) -> int:
    for flag, v in (("--steps", args.steps), ("--classifier-steps", args.classifier_steps), ("--batch", args.batch)):
        if v < 1:
            return fail(f"{flag}: must be ≥ 1, got {v}")
    if args.seed < 0:
        return fail(f"--seed: must be ≥ 0, got {args.seed}")
    from ..digits.train import train_digits

    train_digits(args.out, args.steps, args.classifier_steps, args.batch, args.seed, args.tiny)
    return 0
