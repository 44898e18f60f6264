"""Test-wide settings: offline, no analytics, a numba cache, few threads (CI has 2 cores),
and torch's (and BLAS's) thread counts restored after every test that changes them (the
app sets them from its queue's concurrency; later tests must not inherit that)."""

import contextlib
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), ".numba_cache"))


def _blas_threads() -> dict:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    return {d["prefix"]: d["num_threads"] for d in threadpool_info()}


@contextlib.contextmanager
def _threads_kept():
    import torch

    torch_before, blas_before = torch.get_num_threads(), _blas_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != torch_before:
            torch.set_num_threads(torch_before)
        changed = {k: v for k, v in blas_before.items() if _blas_threads().get(k) != v}
        if changed:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=changed)


@pytest.fixture(autouse=True, scope="module")
def restore_threads_per_module():
    """Module fixtures (a served app, the app's handlers) set threads too: restored after
    the module (an autouse fixture is set up before, and torn down after, the others)."""
    with _threads_kept():
        yield


@pytest.fixture(autouse=True)
def restore_threads():
    """Put torch's intra-op threads and the BLAS pools back as they were before the test."""
    with _threads_kept():
        yield
