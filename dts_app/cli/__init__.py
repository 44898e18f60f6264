"""Command-line interface: ``python -m dts_app COMMAND ...``.

Each command is a module in this package with ``add_parser(subparsers)`` and
``main(args) -> int``; :data:`COMMANDS` lists them in ``--help`` order.
"""

COMMANDS = ("sample", "search", "sweep", "reproduce", "train_digits", "train_shapes", "bench")
