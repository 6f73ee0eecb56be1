"""Grader-based benchmarks (mmvet, genai_bench): official averaging with a fake grader, judge loop, missing grader."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from fakes import FakeGrader  # tests/evaluation is on sys.path (pytest rootdir import)

from evaluation.bootstrap import means_with_ci95
from evaluation.graders import (
    JUDGE,
    GradeRequest,
    GraderSettings,
    OpenAIChatGrader,
    PrecomputedGrader,
    build_grader,
    group_means_with_ci95,
    parse_judge_score,
)
from evaluation.registry import score
from evaluation.suite import genai_bench  # noqa: F401  (registers the vqascore grader)
from evaluation.suite.mmvet import MMVetSample, judge_query
from setok.io import DataError

MMVET = {
    "v1_0": {"imagename": "v1_0.png", "capability": ["rec"], "question": "Q0?", "answer": "cat"},
    "v1_1": {"imagename": "v1_1.png", "capability": ["ocr", "math"], "question": "Q1?", "answer": "-1<AND>-5"},
    "v1_2": {"imagename": "v1_2.png", "capability": ["rec", "ocr"], "question": "Q2?", "answer": "red<OR>blue"},
    "v1_3": {"imagename": "v1_3.png", "capability": ["know", "gen", "rec"], "question": "Q3?", "answer": "long"},
}
GRADES = {"v1_0": 1.0, "v1_1": 0.5, "v1_2": 0.0, "v1_3": 0.3}


@pytest.fixture
def mmvet_files(tmp_path: Path) -> tuple[Path, Path]:
    """Official mm-vet.json (4 questions) and a results JSON with one answer each."""
    refs, preds = tmp_path / "mm-vet.json", tmp_path / "model.json"
    refs.write_text(json.dumps(MMVET))
    preds.write_text(json.dumps({k: f"answer {k}" for k in MMVET}))
    return preds, refs


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("0.8", 0.8), ("0.8\n", 0.8), ("1.0 (totally right)", 1.0), ("1", 1.0), ("0", 0.0), ("Score: 0.8", None),
     ("1.5", None), ("-0.1", None), ("nan", None), ("", None), (None, None), (" 0.8", None)],
)
def test_judge_reply_parses_text_before_first_space_as_a_score_in_0_1(reply: str | None, expected: float) -> None:
    # " 0.8": the text before the first space is "" (mm-vet_evaluator.py splits on " " before stripping)
    assert parse_judge_score(reply) == expected


def test_judge_query_pads_and_or_and_ends_with_an_empty_field() -> None:
    sample = MMVetSample("v", "What is x?", "-1<AND>-5", ("math",), "x = 3")
    assert judge_query("PROMPT\n", sample) == "PROMPT\n\nWhat is x? | -1 <AND> -5 | x = 3 | "


def test_mmvet_averages_x100_overall_and_per_capability(mmvet_files: tuple[Path, Path]) -> None:
    r = score("mmvet", *mmvet_files, grader=FakeGrader(GRADES), n_bootstrap=0)
    # total (1 + .5 + 0 + .3) / 4; rec: v1_0, v1_2, v1_3 -> 1.3 / 3; ocr: v1_1, v1_2 -> .5 / 2; math .5; know/gen .3
    assert r.metrics == pytest.approx(
        {"score": 45.0, "rec": 130 / 3, "ocr": 25.0, "know": 30.0, "gen": 30.0, "math": 50.0}
    )
    assert list(r.metrics)[:3] == ["score", "rec", "ocr"] and "spat" not in r.metrics  # absent, never 0
    assert r.rows[1] == {
        "id": "v1_1", "capabilities": ["ocr", "math"], "score": 0.5, "runs": [0.5], "grader": "fake",
        "grader_failed": False,
    }


def test_mmvet_runs_are_averaged_per_sample(mmvet_files: tuple[Path, Path]) -> None:
    class Alternating:
        name, kinds, calls = "alt", frozenset({JUDGE}), 0

        def grade(self, requests: Sequence[GradeRequest]) -> list[float]:
            self.calls += 1
            return [1.0 if self.calls == 1 else 0.0] * len(requests)

    r = score("mmvet", *mmvet_files, grader=Alternating(), runs=2, n_bootstrap=0)
    assert r.metrics["score"] == 50.0 and r.rows[0]["runs"] == [1.0, 0.0]


def test_mmvet_sends_the_official_query_with_the_prompt_file(mmvet_files: tuple[Path, Path], tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Few-shot table\n")
    fake = FakeGrader(GRADES)
    score("mmvet", *mmvet_files, grader=fake, judge_prompt=prompt, judge_retry_suffix="\nDIGIT: ", n_bootstrap=0)
    assert fake.requests[1].prompt == "Few-shot table\n\nQ1? | -1 <AND> -5 | answer v1_1 | "
    assert fake.requests[1].retry_prompt == fake.requests[1].prompt + "\nDIGIT: "


def test_mmvet_without_a_grader_is_a_one_line_error_not_a_zero(
    mmvet_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SETOK_MMVET_GRADER", raising=False)
    with pytest.raises(DataError) as e:
        score("mmvet", *mmvet_files)
    assert "mmvet needs a grader" in str(e.value) and "--grader openai" in str(e.value) and "\n" not in str(e.value)


def test_cli_without_grader_exits_2_and_writes_nothing(
    mmvet_files: tuple[Path, Path], tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    out = tmp_path / "r.json"
    p = cli("score", "mmvet", "--predictions", mmvet_files[0], "--annotations", mmvet_files[1], "--out", out,
            env={"SETOK_MMVET_GRADER": ""})
    assert p.returncode == 2 and not out.exists()
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: mmvet needs a grader")


def test_cli_scores_the_official_grade_file_with_the_precomputed_grader(
    mmvet_files: tuple[Path, Path], tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    grades = {k: {"model": ["gpt-4-0613"] * 2, "content": ["x", "y"], "score": [v, v]} for k, v in GRADES.items()}
    grades["v1_0"]["score"] = [1.0, 0.6]  # two runs -> 0.8; total (0.8 + .5 + 0 + .3) / 4 = 40
    (tmp_path / "grade.json").write_text(json.dumps(grades))
    out = tmp_path / "r.json"
    p = cli("score", "mmvet", "--predictions", mmvet_files[0], "--annotations", mmvet_files[1], "--out", out,
            "--grader", "precomputed", "--grader-file", tmp_path / "grade.json", "--bootstrap", "0")
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["metrics"]["score"] == pytest.approx(40.0)


def test_openai_grader_needs_a_prompt_file_and_an_api_key(
    mmvet_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in ("OPENAI_API_KEY", "SETOK_GRADER_API_KEY", "SETOK_GRADER_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(DataError, match="OPENAI_API_KEY"):
        score("mmvet", *mmvet_files, grader="openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(DataError, match="--judge-prompt FILE is required"):
        score("mmvet", *mmvet_files, grader="openai")


def test_fake_grader_is_not_selectable_by_name() -> None:
    with pytest.raises(DataError, match="unknown grader 'fake'"):
        build_grader("fake", GraderSettings(), kind=JUDGE)


def test_out_of_range_grader_scores_and_missing_answers_are_errors(mmvet_files: tuple[Path, Path]) -> None:
    with pytest.raises(DataError, match=r"outside \[0, 1\] for v1_2"):
        score("mmvet", *mmvet_files, grader=FakeGrader({**GRADES, "v1_2": 1.2}))
    preds, refs = mmvet_files
    preds.write_text(json.dumps({"v1_0": "a", "v1_3": "b"}))
    with pytest.raises(DataError, match="missing answers for 2 of 4 ids .*v1_1, v1_2"):
        score("mmvet", preds, refs, grader=FakeGrader(GRADES))


def _mock_judge(replies: list[str], status: list[int] | None = None) -> tuple[OpenAIChatGrader, list[dict]]:
    """A judge whose HTTP endpoint answers ``replies`` in order (no network); returns it and the sent payloads."""
    sent: list[dict] = []
    codes = list(status or [])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions" and request.headers["authorization"] == "Bearer k"
        sent.append(json.loads(request.content))
        if codes and codes[0] != 200:
            return httpx.Response(codes.pop(0), json={"error": "slow down"})
        codes[:1] = []
        return httpx.Response(200, json={"choices": [{"message": {"content": replies.pop(0)}}]})

    waits: list[float] = []
    grader = OpenAIChatGrader(
        model="judge-1", base_url="https://judge.test/v1", api_key="k",
        transport=httpx.MockTransport(handler), sleep=waits.append,
    )
    grader.waits = waits  # type: ignore[attr-defined]
    return grader, sent


def test_judge_reasks_with_the_retry_prompt_after_an_unparsable_reply() -> None:
    grader, sent = _mock_judge(["Correctness:", "0.7"])
    assert grader.grade([GradeRequest("a", prompt="P", retry_prompt="P+R")]) == [0.7]
    assert [(s["messages"][0]["content"], s["temperature"]) for s in sent] == [("P", 0.0), ("P+R", 0.0)]
    assert sent[0]["model"] == "judge-1" and sent[0]["max_tokens"] == 3
    assert grader.log["a"] == {"replies": ["Correctness:", "0.7"], "failed": False}


def test_judge_gives_zero_after_five_unparsable_replies_with_rising_temperature() -> None:
    grader, sent = _mock_judge(["x"] * 5)
    assert grader.grade([GradeRequest("a", prompt="P", retry_prompt="R")]) == [0.0]
    assert [s["temperature"] for s in sent] == [0.0, 0.0, 0.5, 1.0, 1.5]
    assert grader.log["a"]["failed"] is True


def test_judge_waits_30_s_on_rate_limit_and_resends() -> None:
    grader, sent = _mock_judge(["0.4"], status=[429, 200])
    assert grader.grade([GradeRequest("a", prompt="P")]) == [0.4]
    assert len(sent) == 2 and grader.waits == [30.0]  # type: ignore[attr-defined]


def test_precomputed_grader_names_ids_without_a_score(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a", "score": 0.25}\n')
    g = PrecomputedGrader(path)
    assert g.grade([GradeRequest("a")]) == [0.25]
    with pytest.raises(DataError, match="no score for 1 of 2 samples: b"):
        g.grade([GradeRequest("a"), GradeRequest("b")])


def test_group_means_pair_with_means_with_ci95_and_skip_empty_groups() -> None:
    v = np.array([0.1, 0.9, 0.4, 0.6, 0.2])
    groups = {"all": np.ones(5, bool), "first": np.array([1, 1, 0, 0, 0], bool), "none": np.zeros(5, bool)}
    metrics, ci = group_means_with_ci95(v, groups, scale=100.0, n_boot=300, seed=7)
    ref_metrics, ref_ci = means_with_ci95({"all": v}, scale=100.0, n_boot=300, seed=7)
    assert metrics == pytest.approx({"all": 44.0, "first": 50.0}) and "none" not in metrics
    assert ci["all"] == pytest.approx(ref_ci["all"])  # same resamples as the shared bootstrap
    assert 10.0 <= ci["first"][0] <= 50.0 <= ci["first"][1] <= 90.0


def _genai_files(tmp_path: Path, n_images: int = 5) -> tuple[Path, Path]:
    refs = tmp_path / "genai_image.json"
    refs.write_text(json.dumps({f"{i:05d}": {"id": f"{i:05d}", "prompt": f"prompt {i}"} for i in range(5)}))
    skills = {"attribute": [0, 1], "counting": [2], "basic": [0, 1], "advanced": [2, 3]}  # 00004 in no skill
    (tmp_path / "genai_skills.json").write_text(json.dumps(skills))
    images = tmp_path / "images"
    images.mkdir()
    for i in range(n_images):
        (images / f"{i:05d}.jpeg").write_bytes(b"not read by the fake grader")
    return images, refs


def test_genai_bench_averages_per_skill_and_overall_over_tagged_prompts(tmp_path: Path) -> None:
    images, refs = _genai_files(tmp_path)
    fake = FakeGrader({"00000": 0.9, "00001": 0.7, "00002": 0.4, "00003": 0.2, "00004": 1.0})
    r = score("genai_bench", images, refs, grader=fake, n_bootstrap=0)
    # basic (.9 + .7) / 2; advanced (.4 + .2) / 2; overall = union of tagged prompts (00000-00003) -> 2.2 / 4,
    # the untagged 00004 (1.0) is graded but not averaged (it would give 3.2 / 5 = .64)
    assert r.metrics == pytest.approx({"vqascore": 0.55, "basic": 0.8, "advanced": 0.3, "attribute": 0.8,
                                       "counting": 0.4})
    assert r.n == 4 and r.rows[4] == {"id": "00004", "score": 1.0, "skills": [], "in_overall": False, "grader": "fake"}
    assert fake.requests[2].prompt == "prompt 2" and fake.requests[2].image == images / "00002.jpeg"


def test_genai_bench_names_missing_images_and_needs_a_grader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, refs = _genai_files(tmp_path, n_images=3)
    with pytest.raises(DataError, match="missing images for 2 of 5 prompts: 00003, 00004"):
        score("genai_bench", images, refs, grader=FakeGrader())
    (images / "00003.png").write_bytes(b"")
    (images / "00004.png").write_bytes(b"")
    monkeypatch.delenv("SETOK_GENAI_BENCH_GRADER", raising=False)
    with pytest.raises(DataError, match="genai_bench needs a grader .*--grader vqascore"):
        score("genai_bench", images, refs)


def test_vqascore_grader_without_t2v_metrics_says_what_to_install() -> None:
    try:
        import t2v_metrics  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="t2v_metrics: not installed"):
            build_grader("vqascore", GraderSettings(), kind="image_text")
    else:
        pytest.skip("t2v_metrics is installed")
