"""The shapes world's training command (a seeded retrain reproduces the weights) and the
classifier's prompt scoring on a tiny model built in the test; no shipped assets needed."""

import json

import torch

from dts_app.__main__ import main
from dts_app.backends.shapes import ShapesBackend
from dts_app.shapes.classifier import MAX_COUNT, N_HEADS, head_index, prompt_log_prob
from dts_app.shapes.prompts import parse


def test_train_command_reproduces_and_loads(tmp_path):
    threads = torch.get_num_threads()
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert main(["train-shapes", "--out", str(out), "--steps", "2", "--classifier-steps", "2", "--batch", "4",
                     "--width", "8", "--eval", "0"]) == 0  # fmt: skip
    from safetensors.torch import load_file

    assert torch.get_num_threads() == threads  # the command restores the process's threads
    wa, wb = (load_file(str(o / "model.safetensors")) for o in outs)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    b = ShapesBackend(str(outs[0]))
    v = b.velocity(torch.zeros(2, 3, 32, 32), 0.5, b.condition("two red circles", 2.0))
    assert v.shape == (2, 3, 32, 32) and torch.isfinite(v).all()
    record = json.loads((outs[0] / "training.json").read_text())
    assert record["steps"] == 2 and record["threads"] == 1 and record["machine"]["threads"] == 1  # --threads 1 (default)
    assert record["command"] == (f"python -m dts_app train-shapes --out {outs[0]} --steps 2 --classifier-steps 2 --batch 4 "
                                 "--width 8 --seed 0 --threads 1 --eval 0")  # fmt: skip
    assert len(record["machine"]["load_average"]) == 3 and record["machine"]["cores"] >= 1
    assert main(["train-shapes", "--out", str(tmp_path / "c"), "--steps", "0"]) == 2
    assert main(["train-shapes", "--out", str(tmp_path / "c"), "--threads", "0"]) == 2
    # --classifier-only: the CNN alone (same seed stream as a full run), the flow model untouched
    cnn_before = load_file(str(outs[1] / "classifier.safetensors"))
    assert main(["train-shapes", "--out", str(outs[1]), "--classifier-only", "--classifier-steps", "2", "--batch", "4"]) == 0
    cnn_after = load_file(str(outs[1] / "classifier.safetensors"))
    assert all(torch.equal(cnn_before[k], cnn_after[k]) for k in cnn_before)  # same seed, same steps: same CNN
    assert all(torch.equal(wb[k], v) for k, v in load_file(str(outs[1] / "model.safetensors")).items())
    assert main(["train-shapes", "--out", str(outs[1]), "--classifier-only", "--classifier-steps", "2", "--seed", "1"]) == 2
    # the CLI on this model: images [n, 3, 32, 32] from sample, best_image [3, 32, 32] from search
    common = ["--backend", "shapes", "--model", str(outs[0]), "--prompt", "a red circle left of a blue square",
              "--steps", "3", "--guidance", "2", "--seed", "1"]  # fmt: skip
    assert main(["sample", *common, "--n", "2", "--json", str(tmp_path / "s.json")]) == 0
    d = json.loads((tmp_path / "s.json").read_text())
    assert torch.tensor(d["images"]).shape == (2, 3, 32, 32) and d["ledger"]["denoiser_nfe"] == 2 * 3 * 2
    assert main(["search", *common, "--n", "3", "--verifier", "supervised", "--heldout", "oracle", "--no-x0",
                 "--json", str(tmp_path / "q.json")]) == 0  # fmt: skip
    d = json.loads((tmp_path / "q.json").read_text())
    best = torch.tensor(d["best_image"])
    assert best.shape == (3, 32, 32) and float(best.min()) >= 0 and float(best.max()) <= 1
    led = d["ledger"]
    assert led["denoiser_nfe"] == 3 * 3 * 2 and led["verifier_calls"] == 3 and led["heldout_calls"] == 3
    assert d["best_score"] == max(c["score"] for c in d["candidates"])


def test_prompt_log_prob_reads_counts_and_relations():
    """Logits that put all mass on the right counts and centres in the right order score
    about 0; a wrong count or a reversed order scores far below."""
    spec = parse("a red circle left of a blue square")
    logits = torch.full((2, N_HEADS, MAX_COUNT + 1), -20.0)
    logits[:, :, 0] = 20.0  # nothing anywhere ...
    for h in (head_index("circle", "red"), head_index("square", "blue"), head_index("circle", None), head_index("square", None)):
        logits[:, h] = -20.0
        logits[:, h, 1] = 20.0  # ... but one red circle and one blue square
    centres = torch.zeros(2, N_HEADS, 2)
    centres[0, head_index("circle", "red"), 0], centres[0, head_index("square", "blue"), 0] = -0.5, 0.5
    centres[1, head_index("circle", "red"), 0], centres[1, head_index("square", "blue"), 0] = 0.5, -0.5
    lp = prompt_log_prob(logits, centres, spec)
    assert lp.dtype == torch.float64 and lp[0] > -1e-3 and lp[1] < -5
    assert prompt_log_prob(logits, centres, parse("two red circles"))[0] < -20
    assert prompt_log_prob(logits, centres, parse("a circle"))[0] > -1e-3  # at least one, whatever the colour


def test_search_writes_best_image_for_every_image_backend(tmp_path):
    """digits too: ``best_image`` is the chosen candidate's decoded image ``[C, H, W]``."""
    out = tmp_path / "d.json"
    assert main(["search", "--backend", "digits", "--class", "3", "--n", "3", "--steps", "3", "--verifier", "supervised",
                 "--heldout", "oracle", "--no-x0", "--json", str(out)]) == 0  # fmt: skip
    d = json.loads(out.read_text())
    best = torch.tensor(d["best_image"])
    assert best.shape == (1, 8, 8) and torch.allclose(best, ((torch.tensor(d["best"]) + 1) / 2).clamp(0, 1).view(1, 8, 8))
    out = tmp_path / "g.json"
    assert main(["search", "--backend", "gmm", "--n", "2", "--steps", "3", "--json", str(out)]) == 0
    assert "best_image" not in json.loads(out.read_text())  # point data has no image
