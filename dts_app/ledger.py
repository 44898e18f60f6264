"""The compute ledger: one account of every function evaluation a search makes.

Counts, separately:

- ``denoiser_nfe``: image-forwards through the denoiser (a batch of B with classifier-free
  guidance costs 2·B); this is the NFE that budgets cap and scaling curves use;
- ``denoiser_calls``: batched forward calls (for throughput figures);
- ``decoder_calls``: images decoded (VAE or identity);
- ``verifier_calls``: images scored by the *search* verifier;
- ``heldout_calls``: images scored by the held-out verifier (a diagnostic, not charged);
- ``diagnostic_calls``: verifier evaluations made only to draw the trace (intermediate
  nodes' scores for the UI); never part of a search decision, so not charged;
- ``reverts``: revert-and-resample retries (their denoiser cost is in ``denoiser_nfe``);
- ``obstacle_calls``: obstacle checks that run a feature map on a state (text-concept
  obstacles: decode + CLIP image features, forward and, for repulsion, backward).

A :class:`Budget` caps ``denoiser_nfe``; a charge that would exceed it raises
:class:`BudgetExceeded` *before* the work is done, so a search can catch it and return
what it has found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["Budget", "BudgetExceeded", "Ledger"]


class BudgetExceeded(RuntimeError):
    """Raised when a denoiser call would spend more NFEs than the budget allows."""

    def __init__(self, requested: int, spent: int, max_nfe: int):
        super().__init__(f"NFE budget exhausted: {spent} of {max_nfe} spent, the next call needs {requested}")
        self.requested, self.spent, self.max_nfe = requested, spent, max_nfe


@dataclass(frozen=True)
class Budget:
    """A cap on denoiser image-forwards; ``None`` means unlimited."""

    max_nfe: int | None = None

    def __post_init__(self):
        if self.max_nfe is not None and self.max_nfe < 1:
            raise ValueError(f"budget must be ≥ 1 NFE, got {self.max_nfe}")


@dataclass
class Ledger:
    """Mutable counters for one search run (see module docstring)."""

    budget: Budget = field(default_factory=Budget)
    denoiser_nfe: int = 0
    denoiser_calls: int = 0
    decoder_calls: int = 0
    verifier_calls: int = 0
    heldout_calls: int = 0
    diagnostic_calls: int = 0
    reverts: int = 0
    obstacle_calls: int = 0

    @property
    def remaining(self) -> int | None:
        """NFEs left, or ``None`` without a cap."""
        if self.budget.max_nfe is None:
            return None
        return self.budget.max_nfe - self.denoiser_nfe

    def can_afford(self, nfe: int) -> bool:
        rem = self.remaining
        return rem is None or nfe <= rem

    def charge_denoiser(self, batch: int, forwards_per_image: int = 1) -> None:
        """Charge one batched denoiser call; raises :class:`BudgetExceeded` first if over."""
        nfe = batch * forwards_per_image
        if not self.can_afford(nfe):
            raise BudgetExceeded(nfe, self.denoiser_nfe, self.budget.max_nfe)
        self.denoiser_nfe += nfe
        self.denoiser_calls += 1

    def charge_decoder(self, n: int) -> None:
        self.decoder_calls += n

    def charge_verifier(self, n: int) -> None:
        self.verifier_calls += n

    def charge_heldout(self, n: int) -> None:
        self.heldout_calls += n

    def charge_diagnostic(self, n: int) -> None:
        self.diagnostic_calls += n

    def charge_revert(self, n: int = 1) -> None:
        self.reverts += n

    def charge_obstacle(self, n: int) -> None:
        self.obstacle_calls += n

    def to_dict(self) -> dict:
        d = asdict(self)
        d["budget"] = self.budget.max_nfe
        return d
