"""DTS Explorer app: ``python app.py`` (honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT).

The per-request limits come from ``dts_app.ui.limits.Limits.from_env()``: strict on a
Hugging Face Space (``SPACE_ID`` is set there) or with ``DTS_MODE=space``, generous
locally; see SECURITY.md and docs/app.md.
"""

import os

# Before torch is imported: idle OpenMP workers sleep instead of spinning, so concurrent
# searches (each with threads = cores // concurrency) do not steal each other's cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from dts_app.ui.layout import build_demo

if __name__ == "__main__":
    build_demo().launch()  # framework errors reach visitors as one line of ours (show_error off)
