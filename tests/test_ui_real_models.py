"""The app drives real-model backends through its model / verifier-model boxes."""

from dts_app.testing import save_random_clip, save_random_dit
from dts_app.ui.handlers import AppHandlers, input_values
from dts_app.ui.state import SessionState


def test_dit_through_the_app(tmp_path):
    save_random_dit(str(tmp_path / "dit"))
    save_random_clip(str(tmp_path / "clip"))
    h, s = AppHandlers(), SessionState()
    vals = dict(backend="dit", preset=None, target=207, verifier="clip", heldout="clip-zeroshot", n=2, steps=4, guidance=4.0)
    out = h.run(s, *input_values(**vals, model=str(tmp_path / "dit"), verifier_model=str(tmp_path / "clip")))
    assert out["status"].startswith("**finished**") and "16 NFEs" in out["status"]  # 2 paths × 4 steps × 2 (CFG)
    assert len(s.result.candidates) == 2 and len(out["images"]) == 2  # two decoded images in the gallery
    out = h.run(s, *input_values(**vals))
    assert out["status"].startswith("⚠️") and "model" in out["status"]
    assert len(s.result.candidates) == 2  # the previous result stays
