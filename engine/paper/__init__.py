"""The paper's DeepFM path, kept for the benchmark tables only (the product ranks with
:mod:`engine.ranking`): DeepFM backbone, field encoders, pretraining, the MLP aligner, its
meta-trainer (Eq. 5-7) and its gradient refinement."""
