"""The shapes world: procedural scenes of coloured shapes, a GenEval-style prompt grammar,
the exact program checker, and the conditional flow model and CNN trained on renders."""
