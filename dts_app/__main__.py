"""``python -m dts_app COMMAND``: see ``python -m dts_app --help``."""

from __future__ import annotations

import importlib
import sys

from .cli import COMMANDS
from .cli.common import OneLineParser


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m dts_app",
        description="DTS Explorer: inference-time search in diffusion and flow models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".cli.{name}", __package__)
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
