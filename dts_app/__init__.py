"""DTS Explorer: inference-time search in diffusion and flow models.

The package is pure, seeded computation (interpolant, solvers, backends, verifiers,
search, obstacles, trace) plus figure functions and a thin Gradio UI. Heavy imports
(diffusers, transformers, umap, gradio) are lazy.

The public Python API (docs/api.md) is imported on first use, so ``import dts_app`` stays
light:

- :func:`sample`, :func:`search` (:mod:`dts_app.api`) and :func:`search_noise`
  (:mod:`dts_app.api_noise`). ``dts_app.search`` is also the name of the engine's
  package: the package is callable, and calling it runs :func:`dts_app.api.search`;
- adapters (:mod:`dts_app.adapters`): :func:`from_diffusers`, :func:`from_eps`,
  :func:`from_x0`, :func:`from_velocity`, and the :class:`FlowModel` they return.

Example:
    >>> import torch, dts_app
    >>> out = dts_app.sample(lambda x, t: x, shape=(2,), n=3, steps=4)
    >>> out.samples.shape
    torch.Size([3, 2])
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "sample": "dts_app.api",
    "search": "dts_app.search",  # the package, callable: dts_app.search(...) runs dts_app.api.search
    "SampleResult": "dts_app.api",
    "search_noise": "dts_app.api_noise",
    "FlowModel": "dts_app.adapters",
    "from_diffusers": "dts_app.adapters",
    "from_eps": "dts_app.adapters",
    "from_x0": "dts_app.adapters",
    "from_velocity": "dts_app.adapters",
    "SearchResult": "dts_app.search.types",
    "NonFiniteError": "dts_app.search.types",
    "ConfigError": "dts_app.config",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """The public API, imported on first access (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dts_app' has no attribute {name!r}")
    mod = import_module(module)
    return mod if module == f"{__name__}.{name}" else getattr(mod, name)


def __dir__() -> list[str]:
    return sorted(__all__)
