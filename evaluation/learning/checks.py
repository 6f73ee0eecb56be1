"""The learning tier's thresholds: what each trained stage must reach on its own training data, against the trivial
baseline that a model which learned nothing reaches (``make learn`` fails when one is missed).

One :class:`Check` per claim. ``threshold = factor * probe[baseline] + offset`` (or ``factor`` itself when there is
no baseline); the claim holds when ``probe[value] <op> threshold``. The factors leave a margin below what the CI models
reach (``reports/learning.md`` shows both), so a change that stops a stage from learning fails, and a change in
floating-point order does not.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class Check:
    """One claim about a stage.

    Attributes:
        stage: the stage (``evaluation.learning.plan`` names).
        name: what is claimed, in a few words.
        value: the probe's key of the measured value.
        op: ``<=``, ``<``, ``>=`` or ``>``.
        factor: the threshold, as a multiple of ``baseline`` (or as a number when ``baseline`` is None).
        baseline: the probe's key of the baseline, or None.
        about: the baseline (or the absolute threshold) in words.
        offset: added to ``factor * baseline`` (a margin over the baseline rather than a ratio).
    """

    stage: str
    name: str
    value: str
    op: str
    factor: float
    baseline: str | None = None
    about: str = ""
    offset: float = 0.0

    def threshold(self, probe: dict[str, float]) -> float:
        return self.factor * probe[self.baseline] + self.offset if self.baseline else self.factor

    def passes(self, probe: dict[str, float]) -> bool:
        return bool(OPS[self.op](probe[self.value], self.threshold(probe)))

    @property
    def rule(self) -> str:
        """The claim as text, e.g. ``recon_mse <= 0.5 x mean_image_mse``."""
        if not self.baseline:
            return f"{self.value} {self.op} {self.factor:g}"
        rhs = f"{self.factor:g} x {self.baseline}" if self.factor != 1 else self.baseline
        return f"{self.value} {self.op} {rhs}" + (f" + {self.offset:g}" if self.offset else "")


def _falls(stage: str, loss: str, what: str, factor: float = 0.5) -> Check:
    return Check(stage, f"{what} falls", f"{loss}_last", "<=", factor, f"{loss}_first",
                 "the same loss over the first tenth of the run")


def _answers(stage: str) -> tuple[Check, Check]:
    # Over the answers whose words Stage I taught the CI's random LLM (probes.taught_tokens): LoRA cannot reach others.
    return (Check(stage, "reproduces most training answers", "reachable_reproduced", ">=", 0.6, None,
                  "60% of the first answers of its training conversations that Stage I's words can form"),
            Check(stage, "learned them in this stage", "reachable_reproduced", ">=", 1.0, "init_reachable_reproduced",
                  "the model it started from, on the same questions, plus 40 points", offset=0.4))


CHECKS: tuple[Check, ...] = (
    # SeTok tokenizer (Sec. 2.1, Eq. 3)
    Check("setok.tokenizer", "reconstructs its training photos", "recon_mse", "<=", 0.5, "mean_image_mse",
          "the mean training image given for every photo"),
    _falls("setok.tokenizer", "contrastive", "contrastive loss (Eq. 5-7)"),
    Check("setok.tokenizer", "zero-shot top-1 above chance", "top1", ">", 1.0, "top1_chance",
          "always the most common object"),
    # Algorithm 1 counts concepts: a flat image and the photos differ, and the photos differ among themselves. (Which
    # way the flat image goes depends on the encoder: the CI model's random ViT gives it its position embeddings.)
    Check("setok.tokenizer", "a flat image's token count differs", "tokens_flat_vs_photos", ">=", 1.0, None,
          "one token between the flat image and the photos' mean"),
    Check("setok.tokenizer", "token counts vary with content", "tokens_photos_spread", ">=", 2.0, None,
          "two tokens between the photos' fewest and most"),
    # SemHiTok tokenizer (Sec. 3.1-3.2)
    Check("semhitok.semantic_codebook", "distils SigLIP (Eq. 3)", "distill", "<=", 0.5, "mean_feature_distill",
          "the mean SigLIP feature given for every patch"),
    Check("semhitok.semantic_codebook", "uses its codebook", "codebook_usage", ">=", 0.25, None,
          "a quarter of the codes used on the training photos"),
    Check("semhitok.pixel_codebook", "reconstructs its training photos", "recon_mse", "<=", 0.5, "mean_image_mse",
          "the mean training image"),
    Check("semhitok.pixel_finetune", "reconstructs its training photos", "recon_mse", "<=", 0.5, "mean_image_mse",
          "the mean training image"),
    Check("semhitok.pixel_decoder", "reconstructs its training photos", "recon_mse", "<=", 0.5, "mean_image_mse",
          "the mean training image"),
    # SeTokIM (Sec. 2.2)
    _falls("setok.stage1", "text", "text loss"),
    _falls("setok.stage1", "vis", "diffusion loss (Eq. 4)"),
    Check("setok.stage1", "the diffusion head uses its condition", "diffusion_true_condition", "<=", 0.9,
          "diffusion_shuffled_condition", "the same tokens and noise with the conditions shuffled"),
    Check("setok.mask_decoder", "segments its training objects (cIoU)", "ciou", ">=", 0.5, None,
          "cIoU 0.5"),
    Check("setok.mask_decoder", "beats an all-foreground mask", "ciou", ">=", 1.5, "all_foreground_ciou",
          "an all-foreground mask's cIoU"),
    *_answers("setok.stage2"),
    # The unified MLLM on SemHiTok codes (Sec. 3.3)
    _falls("semhitok.stage1", "text", "text loss"),
    Check("semhitok.stage1", "predicts its training image codes", "code_top1", ">=", 2.0,
          "most_frequent_code_baseline", "always the most frequent code"),
    *_answers("semhitok.stage2"),
    Check("semhitok.stage2", "predicts its training image codes", "code_top1", ">=", 2.0,
          "most_frequent_code_baseline", "always the most frequent code"),
)


def evaluate(probes: dict[str, dict[str, float]], *, complete: bool = True) -> list[dict[str, object]]:
    """One row per check: stage, claim, rule, value, baseline, threshold, passed. A stage without a probe fails its
    checks, unless ``complete`` is False (a run stopped early with ``--until``: only the stages it ran are checked)."""
    rows = []
    for c in CHECKS:
        if not complete and c.stage not in probes:
            continue
        probe = probes.get(c.stage)
        row: dict[str, object] = {"stage": c.stage, "check": c.name, "rule": c.rule, "about": c.about}
        if probe is None:
            rows.append(row | {"value": None, "baseline": None, "threshold": None, "passed": False})
            continue
        rows.append(row | {"value": probe[c.value], "baseline": probe[c.baseline] if c.baseline else None,
                           "threshold": c.threshold(probe), "passed": c.passes(probe)})
    return rows
