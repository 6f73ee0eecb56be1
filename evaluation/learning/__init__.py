"""The learning tier (`make learn`): each trainable stage trained on the CI fixtures long enough to learn and checked
against trivial baselines on its own training data (see ``python -m evaluation.learning --help``)."""
