"""Per-candidate random streams.

Every candidate (and every node of a search tree) owns a ``torch.Generator`` whose seed is
derived from ``(seed, *key)`` with numpy's ``SeedSequence``, so candidate ``i`` draws the
same numbers whether it runs alone or inside a batch of 64, and any candidate can be
re-run alone from its key. Draws are made per candidate on the CPU (bitwise reproducible)
and then moved to the target device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["stream_seed", "stream", "Streams", "randn_per"]

Key = Sequence[int]


def stream_seed(seed: int, *key: int, domain: int = 0) -> int:
    """A 63-bit seed for the stream ``(seed, *key)``; distinct keys give independent streams.

    ``domain`` separates key spaces: paths use domain 0 (``SeedSequence(seed)``); an
    algorithm's own draws (selection, resampling) use another domain
    (``SeedSequence([seed, domain])``), so they never share a stream with any path key.
    """
    if seed < 0 or domain < 0 or any(k < 0 for k in key):
        raise ValueError(f"seed, domain and key parts must be ≥ 0, got seed={seed}, domain={domain}, key={key}")
    entropy = seed if domain == 0 else [seed, domain]
    ss = np.random.SeedSequence(entropy=entropy, spawn_key=tuple(int(k) for k in key))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def stream(seed: int, *key: int, domain: int = 0) -> torch.Generator:
    """A fresh CPU generator for the stream ``(seed, *key)`` in ``domain``."""
    g = torch.Generator(device="cpu")
    g.manual_seed(stream_seed(seed, *key, domain=domain))
    return g


def randn_per(
    gens: Sequence[torch.Generator],
    shape: Sequence[int],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Stack one standard-normal draw of ``shape`` from each generator: ``[len(gens), *shape]``."""
    if not gens:
        return torch.empty((0, *shape), dtype=dtype, device=device)
    out = torch.stack([torch.randn(tuple(shape), generator=g, dtype=torch.float32) for g in gens])
    return out.to(device=device, dtype=dtype)


class Streams:
    """Lazily created generators keyed by tuples, all derived from one seed.

    ``Streams(seed).get((i,))`` is candidate ``i``'s generator; it is created on first use
    and then advanced by every draw, so a candidate's sequence of draws does not depend on
    which other candidates exist.
    """

    def __init__(self, seed: int):
        if seed < 0:
            raise ValueError(f"seed must be ≥ 0, got {seed}")
        self.seed = int(seed)
        self._gens: dict[tuple[int, ...], torch.Generator] = {}

    def get(self, key: Key) -> torch.Generator:
        if type(key) is not tuple:
            key = tuple(int(k) for k in key)
        if key not in self._gens:
            self._gens[key] = stream(self.seed, *key)
        return self._gens[key]

    def randn(
        self,
        keys: Sequence[Key],
        shape: Sequence[int],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """One draw of ``shape`` per key, stacked: ``[len(keys), *shape]``."""
        return randn_per([self.get(k) for k in keys], shape, device=device, dtype=dtype)
