"""The second hardening (issue 25): tests that do not depend on the clock, run files under
the search limits, one validation path after control updates, bounded disk, error surfaces
of our own. Each test here failed before its fix."""

from __future__ import annotations

import torch

from dts_app.ui.limits import configure_threads

THREADS_AT_IMPORT = torch.get_num_threads()


# ---- tests restore torch's threads -------------------------------------------------------------
def test_a_test_may_change_torch_threads():
    torch.set_num_threads(THREADS_AT_IMPORT + 2)
    assert configure_threads(10_000) == 1  # as the app does: threads × concurrency ≤ cores


def test_the_next_test_gets_the_threads_back():
    """The app's tests set one thread (``configure_threads``) for every later test before
    ``conftest.restore_threads``; the golden digests once followed that."""
    assert torch.get_num_threads() == THREADS_AT_IMPORT
