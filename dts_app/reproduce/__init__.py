"""``reproduce``: re-derive the field's findings on the embedded backends, with error bars.

Each experiment (:data:`EXPERIMENTS`, name → :class:`~.base.Experiment`) plans its runs as
executor cells and summarizes them into a finding whose ``held`` is computed from the data.
:func:`run_reproduce` runs the selected ones and writes ``report.json``, ``report.html``
and ``report.md``.
"""

from . import sampling, scaling, shapes, verifiers  # noqa: F401  (importing registers the experiments)
from .base import EXPERIMENTS, Context, Experiment, Finding
from .runner import build_report, run_reproduce

ORDER = (
    "steps-vs-search",
    "verifier-hacking",
    "self-supervised",
    "algorithms",
    "dts-savings",
    "tilted-sampling",
    "obstacles",
    "digits-scaling",
    "digits-hacking",
)
for _name in [*ORDER, *[n for n in list(EXPERIMENTS) if n not in ORDER]]:  # report order
    EXPERIMENTS[_name] = EXPERIMENTS.pop(_name)

__all__ = ["EXPERIMENTS", "ORDER", "Context", "Experiment", "Finding", "build_report", "run_reproduce"]
