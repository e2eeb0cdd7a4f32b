"""The measurement layer, below both ``evaluate/`` and ``invariance/``.

- :mod:`.features`: frozen features extracted once per (checkpoint, dataset, split, layer) and
  cached on disk by content hash; every frozen-feature protocol reads them from here;
- :mod:`.results`: the results store (SQLite, one row per metric value, with provenance); torch-free,
  so ``reports/`` reads it without torch;
- :mod:`.tasks`: evaluation tasks as records (``Task``) in one registry, which ``evaluate.tasks``
  and ``invariance.tasks`` fill, and the one loop that runs a task and stores its rows;
- :mod:`.context`: what a task reads (the checkpoint, its metadata, the dataset, cached features);
- :mod:`.checkpoints`: checkpoint files named directly or found under runs folders.

Importing this package loads nothing heavy: each module says what it needs.
"""
