"""DTS Explorer: inference-time search in diffusion and flow models.

The package is pure, seeded computation (interpolant, solvers, backends, verifiers,
search, obstacles, trace) plus figure functions and a thin Gradio UI. Heavy imports
(diffusers, transformers, umap, gradio) are lazy.
"""

__version__ = "0.1.0"
