"""``train-shapes``: train the shapes world's flow model and CNN classifier."""

from __future__ import annotations

from .common import fail

HELP = "Train the prompt-conditional shapes flow model and its CNN classifier (safetensors) into --out."


def add_parser(sub) -> None:
    p = sub.add_parser("train-shapes", help=HELP, description=HELP)
    p.add_argument("--out", default="assets/shapes", help="Output directory. Default: assets/shapes.")
    p.add_argument("--steps", type=int, default=3000, help="Flow-matching training steps. Default: 3000 (the shipped run).")
    p.add_argument("--classifier-steps", type=int, default=2000, help="Training steps of the classifier. Default: 2000.")
    p.add_argument("--batch", type=int, default=64, help="Batch size. Default: 64.")
    p.add_argument("--width", type=int, default=48, help="Channels of the flow model's first level. Default: 48.")
    p.add_argument("--seed", type=int, default=0, help="Seed of all randomness. Default: 0.")
    p.add_argument(
        "--threads", type=int, default=1, help="Torch CPU threads (1 is fastest on a shared 2-core machine). Default: 1."
    )
    p.add_argument("--eval", type=int, default=8, help="Samples per category for the base pass rate (0: skip). Default: 8.")
    p.add_argument(
        "--classifier-only",
        action="store_true",
        help="Retrain only the CNN classifier into --out (its seed is independent of the flow model's), updating training.json.",
    )
    p.set_defaults(run=main)


def main(args) -> int:
    for flag, v in (("--steps", args.steps), ("--classifier-steps", args.classifier_steps), ("--batch", args.batch)):
        if v < 1:
            return fail(f"{flag}: must be ≥ 1, got {v}")
    if args.width < 8 or args.width % 8:
        return fail(f"--width: must be a multiple of 8 and ≥ 8, got {args.width}")
    if args.threads < 1:
        return fail(f"--threads: must be ≥ 1, got {args.threads}")
    if args.seed < 0 or args.eval < 0:
        return fail(f"--seed and --eval: must be ≥ 0, got {args.seed} and {args.eval}")
    import torch

    from ..shapes.train import retrain_classifier, train_shapes

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        if args.classifier_only:
            retrain_classifier(args.out, args.classifier_steps, args.seed)
        else:
            train_shapes(args.out, args.steps, args.classifier_steps, args.batch, args.seed, args.width, args.eval)
    except ValueError as e:
        return fail(str(e))
    finally:
        torch.set_num_threads(threads)
    return 0
