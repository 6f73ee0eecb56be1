"""Benchmark scoring for the SeTok reproduction harness.

Every benchmark is one module of :mod:`evaluation.suite` registered with :func:`evaluation.registry.register`, its
one home: its class declares the scorer (``_score``), its file formats (``help``), headline metric, output kind,
inference task (``task``) and layout check (``check_layout``), and the DAG lists, tables and checks read them from the
registry. ``python -m evaluation list`` shows them and ``python -m evaluation score <benchmark> --help`` documents
each one's file formats; ``python -m evaluation.layout_check --benchmark NAME`` checks its official files in place.

Layout (one concept per module):

* :mod:`evaluation.registry` -- :class:`~evaluation.registry.Benchmark`, :class:`~evaluation.registry.ScoreResult`,
  ``register`` / ``get`` / ``score``.
* :mod:`evaluation.suite` -- one module per benchmark (families share a base in a private ``_`` module).
* :mod:`evaluation.tasks` -- the inference tasks by kind (caption, vqa, pope, editing, ...) and ``build_task``.
* :mod:`evaluation.metrics` -- pure functions over numpy arrays (top-k accuracy, Fréchet distance); no model, no I/O.
* :mod:`evaluation.bootstrap` -- percentile-bootstrap 95% intervals.
* :mod:`evaluation.readers` -- file readers that validate input and raise one-line :class:`setok.io.DataError`.
* :mod:`evaluation.features` -- the Inception network used by FID (offline weights) and image-folder features.
* :mod:`evaluation.results` -- the result JSON + per-sample JSONL writer.
* :mod:`evaluation.cli` -- ``python -m evaluation``.

Importing this package is cheap: torch is only imported when FID features are computed.
"""
