"""What the learning tier measures after each stage: the trained model on its own training data, beside the trivial
baseline that a model which learned nothing would reach.

Every probe is deterministic (eval mode, fixed seeds, the whole training set of the CI fixtures in one pass) and
returns a flat ``{name: number}`` dict; :mod:`evaluation.learning.checks` holds the thresholds. Losses that training
logs (``train_log.jsonl``) are compared between the first and the last tenth of the run.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from setok.config import Config
from setok.io import DataError

# A flat image and the training photos: the clustering must give the flat one fewer tokens (Algorithm 1 counts
# semantic units, not a fixed grid).
FLAT_GREY = 0.5
SEED = 0


# --------------------------------------------------------------------------------------------- training logs


def log_windows(path: Path, key: str, *, fraction: float = 0.1) -> dict[str, float]:
    """Mean of ``key`` over the logged steps in the first and in the last ``fraction`` of a run.

    Returns ``{"first": ..., "last": ..., "ratio": first / last}``; a stage logs ``vis`` only on steps whose
    micro-batch generated an image, so the windows average the steps that have the key.
    """
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise DataError(f"{path}: empty training log")
    steps = int(rows[-1]["step"])
    cut = max(1, round(fraction * steps))
    first = [r[key] for r in rows if key in r and r["step"] <= cut]
    last = [r[key] for r in rows if key in r and r["step"] > steps - cut]
    if not first or not last:
        raise DataError(f"{path}: no {key!r} logged in the first or the last {cut} of {steps} steps")
    a, b = float(np.mean(first)), float(np.mean(last))
    return {"first": a, "last": b, "ratio": a / max(b, 1e-12)}


def with_prefix(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in values.items()}


# --------------------------------------------------------------------------------------------- image stages


def training_images(cfg: Config, sources: Sequence[str], image_size: int) -> tuple[dict[str, Any], list[str]]:
    """Every training image of ``sources`` as one batch (``setok.data.collate``), and the class vocabulary."""
    from setok.data import build_datasets, collate

    ds = build_datasets([cfg.datasets[s] for s in sources], image_size=image_size)
    return collate([ds[i] for i in range(len(ds))]), list(getattr(ds, "classes", []))


def mean_image_mse(target: torch.Tensor) -> float:
    """MSE of the dataset's mean image against every image ``(N, 3, S, S)``: a decoder that ignores its input."""
    return float((target - target.mean(0, keepdim=True)).pow(2).mean())


def zero_shot(model: Any, tok: Any, text: Any, truth: list[str], templates: list[str]) -> dict[str, float]:
    """Zero-shot top-1 of SeTok tokens ``tok`` among the distinct names in ``truth`` (one per image), as the
    ``imagenet`` benchmark's predictor classifies; chance = always answering the most common name."""
    from evaluation.predict.tokenizer import zero_shot_classifier, zero_shot_scores

    names = sorted(set(truth))
    scores = zero_shot_scores(model, tok, zero_shot_classifier(text, names, templates))  # (N, K)
    target = torch.tensor([names.index(t) for t in truth])
    return {"top1": float((scores.argmax(-1) == target).float().mean()),
            "top1_chance": max(truth.count(n) for n in names) / len(truth), "names": float(len(names))}


@torch.no_grad()
def probe_setok_tokenizer(run: Path, cfg: Config) -> dict[str, float]:
    """SeTok: reconstruction, contrastive loss, zero-shot top-1 and token counts on its training photos.

    Zero-shot top-1 names each photo by its most salient object (its first label), the concepts Eq. (5)-(7) align
    tokens with; ``class_top1`` uses the evaluation classes instead ("person" for the astronaut), which the CI model's
    random, frozen text tower cannot relate to the labels it was trained on, so it is reported, not checked.
    """
    from setok.modeling.build import load_setok

    model, text, trained = load_setok(run / "model.pt")
    tc = trained.tokenizer
    batch, classes = training_images(cfg, cfg.train_tokenizer.sources, tc.backbone.image_size)
    images = batch["image"]
    tok, recon = model(images)
    size = tc.detokenizer.image_size
    target = F.interpolate(images, size=(size, size), mode="bicubic", antialias=True, align_corners=False) * 2 - 1
    out = {"recon_mse": float((recon - target).pow(2).mean()), "mean_image_mse": mean_image_mse(target)}
    out |= with_prefix("contrastive", log_windows(run / "train_log.jsonl", "contrastive"))
    out |= zero_shot(model, tok, text, [labels[0] for labels in batch["labels"]], list(tc.loss.prompt_templates))
    classes_top1 = zero_shot(model, tok, text, [classes[k] for k in batch["label"]], list(tc.loss.prompt_templates))
    out |= {"class_top1": classes_top1["top1"], "class_top1_chance": classes_top1["top1_chance"]}
    flat = model.tokenize(torch.full_like(images[:1], FLAT_GREY))
    out |= {"tokens_flat": float(flat.num_tokens[0]), "tokens_photos_mean": float(tok.num_tokens.float().mean()),
            "tokens_photos_min": float(tok.num_tokens.min()), "tokens_photos_max": float(tok.num_tokens.max()),
            "tokens_cap": float(tc.clustering.max_tokens)}
    out |= {"tokens_flat_vs_photos": abs(out["tokens_flat"] - out["tokens_photos_mean"]),
            "tokens_photos_spread": out["tokens_photos_max"] - out["tokens_photos_min"]}
    return out


@torch.no_grad()
def probe_semantic_codebook(run: Path, cfg: Config) -> dict[str, float]:
    """SemHiTok's semantic codebook: distillation against the mean-feature baseline, and codebook usage."""
    from setok.modeling.build import load_semhitok
    from setok.modeling.semantic_codebook import distill_loss

    model, trained = load_semhitok(run / "model.pt")
    sc = trained.tokenizer.semhitok
    batch, _ = training_images(cfg, cfg.train_semantic_codebook.sources, sc.semantic.backbone.image_size)
    feats = model.semantic_features(batch["image"])  # (N, h*w, D)
    out = model.semantic(feats)
    mean = feats.flatten(0, 1).mean(0).expand_as(feats)  # one feature for every patch of every image
    used = torch.unique(out.indices).numel()
    return {
        "distill": float(distill_loss(out.recon, feats, kind=sc.semantic.distill)),
        "mean_feature_distill": float(distill_loss(mean, feats, kind=sc.semantic.distill)),
        "codes_used": float(used), "codebook_size": float(sc.semantic.vq.codebook_size),
        "codebook_usage": used / sc.semantic.vq.codebook_size,
    }


@torch.no_grad()
def probe_semhitok_pixels(run: Path, cfg: Config, stage: str) -> dict[str, float]:
    """A SemHiTok pixel stage: reconstruction MSE of its training photos against the mean image."""
    from setok.modeling.build import load_semhitok

    model, trained = load_semhitok(run / "model.pt")
    model.set_stage(stage).eval()
    sc = trained.tokenizer.semhitok
    batch, _ = training_images(cfg, getattr(cfg, f"train_{stage}").sources, sc.semantic.backbone.image_size)
    px = model.forward_pixel(batch["image"])
    return {"recon_mse": float((px.recon - px.target).pow(2).mean()), "mean_image_mse": mean_image_mse(px.target),
            "pixel_codes_used": float(torch.unique(model.flat(px.codes)).numel())}


# --------------------------------------------------------------------------------------------- MLLM stages


def _stage_samples(cfg: Config, stage: str, keep: Any) -> list[Any]:
    """The samples of every source of ``train_<stage>`` that ``keep(sample)`` accepts, in config order."""
    from setok.data.sources import build_multimodal_source

    sc = getattr(cfg, f"train_{stage}")
    return [s for name in sc.sources for s in build_multimodal_source(cfg.datasets[name], name=name) if keep(s)]


def _raw_batches(samples: list[Any], image_size: int, size: int = 8) -> Iterator[Any]:
    """``samples`` as loaded micro-batches (``RawBatch``) of ``size``, in order."""
    from setok.data.multimodal_loader import MultimodalDataset, collate_multimodal

    ds = MultimodalDataset([samples], image_size=image_size)
    for start in range(0, len(ds), size):
        yield collate_multimodal([ds[i] for i in range(start, min(start + size, len(ds)))])


def _special(tokenizer: Any) -> Any:
    from setok.modeling.llm import special_ids
    from setok.train.mllm_batch import SpecialIds

    ids = special_ids(tokenizer)
    return SpecialIds(img_start=ids["img_start"], img_end=ids["img_end"], pad=ids["pad"], eos=ids["eos"],
                      bos=ids["bos"])


def generates_image(sample: Any) -> bool:
    from setok.train.mllm import generates_image as gen

    return gen(sample)


@torch.no_grad()
def probe_setokim_stage1(run: Path, tokenizer: Path, cfg: Config, *, repeats: int = 8) -> dict[str, float]:
    """SeTokIM Stage I: its logged text and diffusion losses, and whether the diffusion head uses its condition.

    The diffusion loss of every generated token of the stage's generation samples is computed twice with the same
    timesteps and noise: with the LLM's condition ``z`` for that token, and with the conditions shuffled among all
    tokens. A head that ignores ``z`` scores both alike.
    """
    from setok.modeling.build import load_mllm, load_setok
    from setok.train.mllm import _tokenize
    from setok.train.mllm_batch import build_sequences, image_token_lists

    loaded = load_mllm(run / "model.pt")
    model, sc = loaded.model.eval(), cfg.train_stage1
    setok, _, _ = load_setok(tokenizer)
    special = _special(loaded.tokenizer)
    samples = _stage_samples(cfg, "stage1", generates_image)
    targets, conds = [], []
    for raw in _raw_batches(samples, cfg.tokenizer.backbone.image_size):
        tok, selected = _tokenize(setok, raw, overlap=cfg.mllm.segment_overlap, dev=torch.device("cpu"))
        lists = image_token_lists(tok.tokens, tok.valid, selected, limit=sc.max_image_tokens)
        batch = build_sequences(raw, lists, template=sc.template, drop=[False] * len(raw.samples),
                                tokenize=lambda t: loaded.tokenizer(t, add_special_tokens=False)["input_ids"],
                                ids=special, token_dim=tok.tokens.shape[-1], max_length=cfg.mllm.max_length)
        h = model.hidden_states(batch)
        before = torch.zeros_like(batch.visual)
        before[:, :-1] = batch.visual[:, 1:]
        train = batch.visual_train
        conds.append(model.condition(h[before])[train])
        targets.append(batch.visual_tokens[train])
    target, z = torch.cat(targets), torch.cat(conds)  # (M, D), (M, C)
    g = torch.Generator().manual_seed(SEED)
    true_, shuffled = [], []
    for r in range(repeats):
        perm = torch.randperm(z.shape[0], generator=g)
        true_.append(float(model.diffloss(target, z, generator=torch.Generator().manual_seed(r))))
        shuffled.append(float(model.diffloss(target, z[perm], generator=torch.Generator().manual_seed(r))))
    log = run / "train_log.jsonl"
    out = with_prefix("text", log_windows(log, "text")) | with_prefix("vis", log_windows(log, "vis"))
    return out | {"diffusion_true_condition": float(np.mean(true_)),
                  "diffusion_shuffled_condition": float(np.mean(shuffled)), "generated_tokens": float(z.shape[0])}


@torch.no_grad()
def probe_mask_decoder(run: Path, tokenizer: Path, cfg: Config) -> dict[str, float]:
    """The mask decoder on its training objects, prompted as in training (the object's SeTok tokens): cIoU and gIoU
    (LISA's definitions, at the decoder's output resolution), beside an all-foreground mask's cIoU."""
    from evaluation.metrics.segmentation import ciou, giou, sample_iou
    from setok.modeling.build import load_mllm, load_setok
    from setok.train.mllm import _tokenize
    from setok.train.mllm_batch import mask_target

    loaded = load_mllm(run / "model.pt")
    decoder = loaded.mask_decoder.eval()
    setok, _, _ = load_setok(tokenizer)
    samples = _stage_samples(cfg, "mask_decoder", lambda s: s.task == "segment")
    inter, union, foreground, area = [], [], 0, 0
    for raw in _raw_batches(samples, cfg.tokenizer.backbone.image_size):
        tok, selected = _tokenize(setok, raw, overlap=cfg.mllm.segment_overlap, dev=torch.device("cpu"))
        idx = raw.has_region
        logits = decoder(tok.features[idx], tok.tokens[idx], (tok.valid & selected)[idx])[:, 0]  # (n, H', W')
        target = mask_target(raw.regions[idx], tok.grid, tuple(logits.shape[-2:]))  # the training target
        pred = logits > 0
        inter += (pred & target).flatten(1).sum(1).tolist()
        union += (pred | target).flatten(1).sum(1).tolist()
        foreground, area = foreground + int(target.sum()), area + target.numel()  # all-foreground: I = target
    i, u = np.array(inter), np.array(union)
    return {"ciou": ciou(i, u), "giou": giou(sample_iou(i, u)), "all_foreground_ciou": foreground / area,
            "objects": float(len(i))}


def first_exchanges(cfg: Config, stage: str) -> list[tuple[Any, str, Path | None, str]]:
    """``(sample, question, image, answer)`` of the first user turn and first answer of every text-answering training
    sample of ``train_<stage>`` (conversations and instructions: the answers a model can be asked to reproduce)."""
    rows = []
    for s in _stage_samples(cfg, stage, lambda s: s.task in ("conversation", "text") and len(s.turns) >= 2):
        user, answer = s.turns[0], s.turns[1]
        if user.role != "user" or answer.role != "assistant" or not all(isinstance(c, str) for c in answer.content):
            continue
        images = [c.path for c in user.content if not isinstance(c, str)]
        question = " ".join(c for c in user.content if isinstance(c, str))
        if len(images) <= 1:
            rows.append((s, question, images[0] if images else None, "".join(answer.content)))
    return rows


def normalise(answer: str) -> str:
    return " ".join(answer.split()).lower()


def taught_tokens(cfg: Config, stage: str, tokenize: Any) -> set[int]:
    """The token ids of every assistant turn of ``train_<stage>``'s samples: the words that stage trained the LLM to
    emit (its output rows moved toward them). Stage II's LoRA leaves the embeddings and the output head frozen, so on
    the CI's random LLM an answer with a word Stage I never taught cannot be produced, however long Stage II trains;
    a pretrained LLM knows every word, so at paper scale every answer is reachable."""
    ids: set[int] = set()
    for sample in _stage_samples(cfg, stage, lambda s: True):
        for turn in sample.turns:
            if turn.role == "assistant":
                ids.update(i for c in turn.content if isinstance(c, str) for i in tokenize(c))
    return ids


def reproduced(predictor: Any, exchanges: list[tuple[Any, str, Path | None, str]]) -> list[bool]:
    """Per exchange: whether the predictor's greedy answer (the benchmarks' path, Stage-II template) equals the
    training answer, whitespace and case ignored."""
    from evaluation.tasks.base import Query

    answers: dict[int, str] = {}
    for with_image in (True, False):  # a batch holds queries with images or queries without
        group = [(k, x) for k, x in enumerate(exchanges) if (x[2] is not None) == with_image]
        for start in range(0, len(group), 8):
            chunk = group[start : start + 8]
            queries = [Query(id=k, kind="answer", prompt=q, image=img, max_new_tokens=48)
                       for k, (_, q, img, _) in chunk]
            answers.update({k: a for (k, _), a in zip(chunk, predictor.answer(queries))})
    return [normalise(answers[k]) == normalise(x[3]) for k, x in enumerate(exchanges)]


@torch.no_grad()
def probe_answers(run: Path, tokenizer: Path, cfg: Config, stage: str, *, init: Path) -> dict[str, float]:
    """The first question of every training conversation of ``train_<stage>`` answered by the trained MLLM and by the
    model it started from (``init``), against the training answer.

    ``reachable``: the answers made only of words Stage I taught (:func:`taught_tokens`); the checks count those, and
    report how many are not (``answers_unreachable``). Also: all answers, per source, and the share of the most
    common answer (a model that always gives it).
    """
    from evaluation.predict.mllm import Predictor

    exchanges = first_exchanges(cfg, stage)
    if not exchanges:
        raise DataError(f"train_{stage}: no conversation with a text answer to reproduce")
    predictor = Predictor(run / "model.pt", tokenizer)

    def tokenize(text: str) -> list[int]:
        return predictor.tokenizer(text, add_special_tokens=False)["input_ids"]

    taught = taught_tokens(cfg, "stage1", tokenize)
    reachable = [set(tokenize(x[3])) <= taught for x in exchanges]
    if not any(reachable):
        raise DataError(f"train_{stage}: no training answer is made of words Stage I taught; nothing to check")
    hits = reproduced(predictor, exchanges)
    before = reproduced(Predictor(init, tokenizer), exchanges)
    refs = [normalise(x[3]) for x in exchanges]

    def share(flags: list[bool]) -> float:
        return float(np.mean([h for h, r in zip(flags, reachable) if r]))

    out = {"reachable_reproduced": share(hits), "init_reachable_reproduced": share(before),
           "answers_reproduced": float(np.mean(hits)), "answers": float(len(refs)),
           "answers_unreachable": float(len(refs) - sum(reachable)),
           "most_common_answer_baseline": max(refs.count(r) for r in refs) / len(refs)}
    sources = [x[0].id.split(":")[0] for x in exchanges]
    for source in sorted(set(sources)):
        out[f"answers_reproduced_{source}"] = float(np.mean([h for h, s in zip(hits, sources) if s == source]))
    return out


@torch.no_grad()
def probe_unified_codes(run: Path, tokenizer: Path, cfg: Config, stage: str) -> dict[str, float]:
    """The unified MLLM: next-code top-1 accuracy on the image codes of its training generation samples (teacher
    forcing), beside always predicting the most frequent code; and its logged text / image losses."""
    from setok.modeling.build import load_mllm, load_semhitok
    from setok.train.mllm_batch import build_sequences

    loaded = load_mllm(run / "model.pt")
    model, sc = loaded.model.eval(), getattr(cfg, f"train_{stage}")
    semhitok, _ = load_semhitok(tokenizer)
    special = _special(loaded.tokenizer)
    samples = _stage_samples(cfg, stage, generates_image)
    correct, codes = 0, []
    for raw in _raw_batches(samples, cfg.tokenizer.semhitok.semantic.backbone.image_size):
        flat = list(semhitok.flat(semhitok.encode(raw.images)))
        batch = build_sequences(raw, flat, template=sc.template, drop=[False] * len(raw.samples),
                                tokenize=lambda t: loaded.tokenizer(t, add_special_tokens=False)["input_ids"],
                                ids=special, token_dim=0, max_length=cfg.mllm.max_length)
        out = model.lm(inputs_embeds=model.embed(batch), attention_mask=batch.attention_mask,
                       output_hidden_states=True, logits_to_keep=1)
        labels = model.joint_labels(batch)
        sel = labels >= model.text_vocab  # positions predicting an image code
        h = out.hidden_states[-1][sel]
        logits = torch.cat([model.lm.get_output_embeddings()(h), model.image_logits(h)], dim=-1)
        correct += int((logits.argmax(-1) == labels[sel]).sum())
        codes.append(labels[sel] - model.text_vocab)
    codes_all = torch.cat(codes)
    log = run / "train_log.jsonl"
    out = {"code_top1": correct / codes_all.numel(),
           "most_frequent_code_baseline": float(torch.bincount(codes_all).max() / codes_all.numel()),
           "generated_codes": float(codes_all.numel())}
    return out | with_prefix("image", log_windows(log, "image")) | with_prefix("text", log_windows(log, "text"))
