"""Concept sampling for the concept-level contrastive loss (App. C.2): K object labels per image, prompted."""
from __future__ import annotations

import torch


def sample_concepts(
    labels: list[list[str]], use: list[bool], *, k: int, templates: list[str], generator: torch.Generator
) -> tuple[list[str], torch.Tensor]:
    """Pick up to ``k`` distinct object labels per image at random and prompt each with a random template.

    Args:
        labels: object labels of each image.
        use: whether each image takes part in the contrastive loss.
        k: ``K``, texts per image.
        templates: prompt templates with one ``{}``, e.g. ``"A photo of a {}."``.
        generator: seeded per step, so a resumed run draws the same concepts.

    Returns:
        ``prompts`` (``B * k`` strings, row-major; padding slots repeat the first template with an empty label) and
        ``valid`` ``(B, k)`` bool.
    """
    prompts: list[str] = []
    valid = torch.zeros(len(labels), k, dtype=torch.bool)
    for i, (objs, on) in enumerate(zip(labels, use)):
        uniq = list(dict.fromkeys(objs)) if on else []
        order = torch.randperm(len(uniq), generator=generator)[:k].tolist() if uniq else []
        for j in range(k):
            if j < len(order):
                t = templates[int(torch.randint(len(templates), (1,), generator=generator))]
                prompts.append(t.format(uniq[order[j]]))
                valid[i, j] = True
            else:
                prompts.append(templates[0].format(""))
    return prompts, valid
