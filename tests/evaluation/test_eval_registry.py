"""Registering benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation import registry
from evaluation.registry import Benchmark, Metric, ScoreResult, register
from setok.io import DataError


@pytest.fixture
def clean_registry() -> Iterator[None]:
    registry.names()  # load the suite first, so what is restored includes it (the file also runs alone)
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def _toy(help_text: str = "Toy benchmark.\n\nreferences: none") -> type[Benchmark]:
    class Toy(Benchmark):
        help = help_text
        metrics = (Metric("m", higher_is_better=False),)
        needs_annotations = False

        def _score(self, predictions: object, annotations: object = None, **opts: object) -> ScoreResult:
            return ScoreResult(metrics={"m": 1.0}, n=1, rows=[{"m": 1.0}])

    return Toy


def test_register_adds_a_benchmark_under_its_name(clean_registry: None) -> None:
    register("toy")(_toy())
    assert "toy" in registry.names()
    bench = registry.get("toy")
    assert bench.name == "toy" and bench.summary == "Toy benchmark."
    assert registry.score("toy", "p").metrics == {"m": 1.0}


def test_register_rejects_a_second_class_under_a_taken_name(
    clean_registry: None,
) -> None:
    register("toy")(_toy())

    class Other(_toy()):  # type: ignore[misc, valid-type]
        pass

    with pytest.raises(ValueError, match="already registered"):
        register("toy")(Other)


def test_register_requires_format_help(clean_registry: None) -> None:
    with pytest.raises(ValueError, match="must define help"):
        register("nohelp")(_toy(help_text=""))


def test_unknown_benchmark_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="imagenet"):
        registry.get("nope")


def test_builtin_benchmarks_declare_metric_directions() -> None:
    assert registry.get("fid").metrics[0] == Metric(
        "fid", higher_is_better=False, help=registry.get("fid").metrics[0].help
    )
    assert (
        registry.get("fid").default_bootstrap == 0
        and registry.get("imagenet").default_bootstrap == 1000
    )


def test_score_checks_annotations_resolves_bootstrap_and_passes_paths(clean_registry: None) -> None:
    seen: dict[str, object] = {}

    class Refs(Benchmark):
        help = "Needs references.\n\nreferences: a file"
        metrics = (Metric("m", higher_is_better=True),)
        missing_annotations = "the reference file"
        default_bootstrap = 7

        def _score(self, predictions: object, annotations: object = None, **opts: object) -> ScoreResult:
            seen.update(predictions=predictions, annotations=annotations, **opts)
            return ScoreResult(metrics={"m": 1.0}, n=1, rows=[])

    register("refs")(Refs)
    with pytest.raises(DataError, match=r"^p: refs needs --annotations \(the reference file\)$"):
        registry.get("refs").score("p")
    with pytest.raises(DataError, match="refs needs --annotations"):
        registry.get("refs").score("p", [])
    registry.get("refs").score("p", "a", questions="q", seed=3)
    assert seen == {"predictions": Path("p"), "annotations": Path("a"), "questions": Path("q"), "n_bootstrap": 7,
                    "seed": 3}
    registry.get("refs").score("p", ["a", "b"], n_bootstrap=0)
    assert seen["annotations"] == [Path("a"), Path("b")] and seen["n_bootstrap"] == 0
    with pytest.raises(ValueError, match="n_bootstrap must be >= 0"):
        registry.get("refs").score("p", "a", n_bootstrap=-1)


def test_a_scorer_gets_a_gpu_exactly_when_it_takes_a_device():
    """Two facts the workflow reads must agree: `scoring_needs_gpu` (the job's resources, setok/resources.py) and a
    `--device` option (the rule passes --device cuda|cpu to it): a GPU job whose scorer ignores the GPU, or a CPU job
    told --device cuda, would be a bug."""
    import argparse

    for name in registry.names():
        parser = argparse.ArgumentParser(add_help=False)
        registry.get(name).add_arguments(parser)
        assert ("--device" in parser._option_string_actions) == registry.get(name).scoring_needs_gpu, name
