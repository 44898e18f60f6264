"""Lessons: named one-click scenarios, each a link that opens the app with its settings and
runs them, a two-sentence caption a newcomer can read, and the one finding of the stored
``reproduce`` report it illustrates (by the experiment's name in ``report.json``).

A lesson is a link whose query carries its control values in the app's own encoding
(:func:`~dts_app.ui.inputs.query_string`, read back by
:func:`~dts_app.ui.inputs.values_from_query`): the page opens it as it opens any link with
settings (the defaults, then the backend's demo settings when the link names a backend, then
the link's values: :func:`opening_values`). ``tests/test_lessons.py`` runs every lesson
through :meth:`AppHandlers.run <dts_app.ui.handlers.AppHandlers.run>` under the public
server's caps and checks that its caption's claim shows in the result.

The numbers in the captions were measured with these settings (``tests/test_lessons.py``
checks each claim; docs/app.md, "Lessons", lists them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .inputs import INPUTS, config_from, query_string, values_from_query

__all__ = [
    "REPORT",
    "Lesson",
    "LESSONS",
    "finding_titles",
    "lesson",
    "lesson_for_finding",
    "lesson_for_values",
    "lesson_note",
    "lessons_markdown",
    "opening_values",
]

#: the stored quick report whose findings the lessons illustrate (the Findings view renders it)
REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "reproduce_quick" / "report.json"


def finding_titles(path: Path = REPORT) -> dict[str, str]:
    """``{name: title}`` of the stored findings, in report order (empty without a report)."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    exps = report.get("experiments") if isinstance(report, dict) else None
    return {e["name"]: e.get("title", e["name"]) for e in exps} if isinstance(exps, list) else {}


@dataclass(frozen=True)
class Lesson:
    """One scenario.

    Attributes:
        key: a short id (``rare-prize``).
        name: the title a visitor clicks.
        caption: two sentences: what is set up, and what to look at.
        finding: the ``name`` of the report experiment it illustrates (None: none stored).
        settings: the control values (:data:`~dts_app.ui.inputs.INPUTS` names) that differ
            from the app's defaults, or from the backend's demo settings when it names a backend.
    """

    key: str
    name: str
    caption: str
    finding: str | None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def values(self) -> dict:
        """Every control value of the lesson, as the page holds them once it is opened (a
        lesson runs its N and M as set: compute budget 0, unless it sets one)."""
        return opening_values({"budget": 0, **self.settings})

    def query(self) -> str:
        """The link's query (no ``?``): the controls that differ from the defaults, plus any
        that the backend's demo settings would otherwise change on opening."""
        from .controls import page_values

        vals = self.values()
        q = query_string(vals, page_values())
        opened = opening_values(values_from_query(dict(parse_qsl(q))))
        extra = [(k, _text(vals[k])) for k in INPUTS if not _same(opened.get(k), vals.get(k))]
        return "&".join(p for p in (q, urlencode(extra)) if p)

    def link(self) -> str:
        """A relative link to the page with the lesson's settings (``?n=2&algorithm=paths``)."""
        return "?" + self.query()

    def config(self, limits: Any = None):
        """The validated :class:`~dts_app.config.SearchConfig` the lesson runs."""
        return config_from(self.values(), limits)


def _text(v: Any) -> str:
    if v is None:
        return ""  # the control's default (a target of None is the backend's own)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return _text(a) == _text(b)


def opening_values(params: Mapping[str, Any]) -> dict:
    """The control values a page opened with a link runs: the page's defaults (its compute
    budget included), then the demo settings of the backend the link names (if it names
    one), then the link's values."""
    from .controls import demo_values, page_values

    vals = page_values()
    if "backend" in params:
        vals.update(demo_values(str(params["backend"])))
    vals.update(params)
    return vals


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "rare-prize",
        "A rare prize: search over paths finds it, best-of-N needs luck",
        "The trap mixture hides a small prize mode (8% of the samples) behind a hazard, and the "
        "verifier rewards being close to the prize. Search over paths re-noises and re-solves its "
        "most promising paths, so 2 starting noises (242 model calls) end in the prize, while "
        "best-of-N at the same cost misses it on this seed and needs 40 draws (640 calls) to get there.",
        "algorithms",
        {"preset": "trap", "algorithm": "paths", "n": 2, "m": 4, "steps": 16, "seed": 4, "verifier": "oracle"},
    ),
    Lesson(
        "hacking",
        "Verifier hacking: a classifier that rewards the tails",
        "On the hack mixture the search verifier is a linear classifier, which grows more confident "
        "the further a sample lies along the class axis, and the held-out judge is the true density. "
        "Best-of-256 drives the classifier's score to its ceiling (about 0) while the chosen sample's "
        "true log-density falls to about −5, below best-of-4's pick: the hacking view says so.",
        "verifier-hacking",
        {"preset": "hack", "algorithm": "best-of-n", "n": 256, "steps": 16, "verifier": "supervised", "heldout": "oracle"},
    ),
    Lesson(
        "obstacle-fidelity",
        "Avoid an obstacle and keep the distribution: SMC vs repulsion",
        "An obstacle sits on trap's hazard mode (Q* = 0.9) and best-of-N's 256 samples are plain "
        "draws, so the dots on the plane are the distribution: SMC avoidance reweights whole paths "
        "and keeps the law outside Q* (prize share about 11%, mean log p0 about −2.2, as exact "
        "rejection sampling). Switch avoidance to repulsion and there are no collisions either, but "
        "the samples pile up on the ring around the obstacle (mean log p0 about −4).",
        "obstacles",
        {
            "preset": "trap",
            "algorithm": "best-of-n",
            "n": 256,
            "steps": 32,
            "avoid": "smc",
            "q_star": 0.9,
            "eta": 1.0,
            "obstacles": "point:1.6,0.4",
            "verifier": "oracle",
        },
    ),
    Lesson(
        "tilted",
        "SMC samples the reward-tilted law",
        "SMC moves 64 particles together and resamples them by their reward, so at the end they are "
        "draws from p0(x)·exp(r(x)/τ), the data law tilted towards the prize (τ = 0.1 in the app). "
        "Their spread (standard deviation about 0.05) and mean log p0 (about −0.95) match the exact "
        "tilted law's, "
        "where best-of-N's 64 finals keep the untilted spread over all three modes.",
        "tilted-sampling",
        {"preset": "trap", "algorithm": "smc", "n": 64, "steps": 16, "verifier": "oracle"},
    ),
    Lesson(
        "digits",
        "Digits: search finds a 3 that a second judge agrees with",
        "The digits model draws unguided, so one draw in ten is a 3, and best-of-16 keeps the image "
        "a CNN scores highest for class 3. An MLP classifier that the search never saw agrees: its "
        "log P(3) of the pick is near 0, where one draw scores about −45 on this seed.",
        "digits-scaling",
        {"backend": "digits", "algorithm": "best-of-n", "n": 16, "steps": 16, "seed": 1},
    ),
    Lesson(
        "shapes",
        "Shapes: search fixes a counting failure",
        "The shapes model draws 'three squares' right only about one time in four (2 of these 8 "
        "samples pass the exact checker's ✓, 6 fail ✗). Best-of-8 scored by that checker keeps one "
        "that passes, and the CNN judge it never used agrees: click an image to see the scene the "
        "checker parsed.",
        "shapes-search",
        {"backend": "shapes", "target": "three squares", "verifier": "oracle", "heldout": "supervised", "seed": 2},
    ),
)

_BY_KEY = {x.key: x for x in LESSONS}


def lesson(key: str) -> Lesson:
    """The lesson with this key (KeyError names the keys)."""
    if key not in _BY_KEY:
        raise KeyError(f"no lesson {key!r}; lessons: {', '.join(_BY_KEY)}")
    return _BY_KEY[key]


def lesson_for_finding(name: str) -> Lesson | None:
    """The lesson that illustrates the report experiment ``name``, or None."""
    return next((x for x in LESSONS if x.finding == name), None)


def lesson_for_values(values: Mapping[str, Any]) -> Lesson | None:
    """The lesson whose settings ``values`` (control values, as opened) run, or None
    (any knob changed since, or values that do not validate)."""
    try:
        cfg = config_from(dict(values))
    except Exception:  # a link's bad values are reported by the run, not here
        return None
    return next((x for x in LESSONS if x.config() == cfg), None)


def lesson_note(values: Mapping[str, Any]) -> str:
    """Markdown naming the lesson these values are (its name and caption), or ``""``."""
    x = lesson_for_values(values)
    return f"**Lesson: {x.name}.** {x.caption}" if x else ""


def lessons_markdown() -> str:
    """The lessons as Markdown: one link per lesson (it opens the page with the lesson's
    settings and runs them), its caption, and the finding it illustrates."""
    titles = finding_titles()
    rows = ["**Lessons**: one click opens the app with a lesson's settings and runs it."]
    for x in LESSONS:
        seen = f" *Finding: {titles.get(x.finding, x.finding)}.*" if x.finding else ""
        rows.append(f"- **[{x.name}]({x.link()})**: {x.caption}{seen}")
    return "\n".join(rows)
