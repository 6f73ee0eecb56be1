"""The reference checkpoint's predictor (evaluation.predict.reference) on the CI config's tiny random LLaVA.

Greedy generation is checked three ways on the same prompts: a left-padded batch of prompts of different lengths,
each prompt alone, and a hand-written greedy loop over the model's logits (a full forward pass per step, no cache):
all three must give the same tokens. Then the pieces: LLaVA's expand2square, the piece-by-piece tokenization, the
placeholder count against the vision tower's features, the kinds a text model refuses, and the weights it names.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from reference_helpers import reference_config

from evaluation.predict.reference import ReferencePredictor
from evaluation.predict.reference.conversation import llava_prompt, prompt_ids, prompt_parts
from evaluation.predict.reference.images import expand2square, pixel_values
from evaluation.tasks import Query, build_task
from setok.io import DataError

STEPS = 6  # new tokens compared


@pytest.fixture(scope="module")
def predictor() -> ReferencePredictor:
    return ReferencePredictor(reference_config())


@pytest.fixture(scope="module")
def queries() -> list[Query]:
    """Four VQAv2 fixture questions plus a much longer one: prompts of 5 different lengths."""
    cfg = reference_config()
    qs = build_task("vqav2", cfg.benchmarks["vqav2"]).queries()[:4]
    long = Query(id="long", kind="answer", image=qs[0].image, max_new_tokens=STEPS,
                 prompt="Look closely at every part of the picture, the background too. " * 3 + qs[0].prompt)
    return [*qs, long]


def new_tokens(predictor: ReferencePredictor, qs: list[Query]) -> list[list[int]]:
    """Greedy new tokens of each row, cut at the first pad (a row that ended early)."""
    out = predictor.generate(predictor.inputs(qs), STEPS).tolist()
    return [row[: row.index(predictor.tokenizer.pad_token_id)] if predictor.tokenizer.pad_token_id in row else row
            for row in out]


@pytest.mark.slow  # greedy generation on the CPU: seconds per call
def test_batched_left_padded_generation_equals_one_at_a_time(predictor, queries) -> None:
    inputs = predictor.inputs(queries)
    lengths = inputs["attention_mask"].sum(1).tolist()
    assert lengths == [71, 72, 72, 70, 110]  # 54 text tokens + 16 image placeholders for the first; 4 lengths
    assert (inputs["attention_mask"][:, -1] == 1).all()  # left padding: every prompt ends in the last column
    batched = new_tokens(predictor, queries)
    alone = [new_tokens(predictor, [q])[0] for q in queries]
    assert batched == alone
    assert all(len(row) == STEPS for row in batched)  # the random model did not stop: all STEPS tokens compared
    assert len({tuple(r) for r in batched}) > 1  # the rows differ, so a mix-up of rows would be seen


@pytest.mark.slow  # greedy generation on the CPU: seconds per call
def test_generation_equals_a_hand_written_greedy_loop(predictor, queries) -> None:
    inputs = predictor.inputs([queries[-1]])
    ids = inputs["input_ids"]
    with torch.no_grad():
        for _ in range(STEPS):  # no cache, no generation utilities: argmax of the last position's logits
            logits = predictor.model(input_ids=ids, pixel_values=inputs["pixel_values"],
                                     attention_mask=torch.ones_like(ids)).logits
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    expected = ids[0, inputs["input_ids"].shape[1]:].tolist()
    assert new_tokens(predictor, [queries[-1]]) == [expected]


@pytest.mark.slow  # greedy generation on the CPU: seconds per call
def test_answers_decode_only_the_new_tokens_cut_to_each_querys_budget(predictor, queries) -> None:
    short = Query(id="s", kind="answer", image=queries[0].image, prompt=queries[0].prompt, max_new_tokens=2)
    answers = predictor.answer([short, queries[-1]])
    tokens = new_tokens(predictor, [short, queries[-1]])
    assert answers == [predictor.tokenizer.decode(tokens[0][:2]).strip(), predictor.tokenizer.decode(tokens[1]).strip()]
    assert "ASSISTANT" not in answers[1]


def test_placeholders_equal_the_vision_towers_features(predictor, queries) -> None:
    inputs = predictor.inputs(queries[:1])
    placeholders = int((inputs["input_ids"] == predictor.image_token_id).sum())
    feats = predictor.model.get_image_features(
        pixel_values=inputs["pixel_values"], vision_feature_layer=predictor.model.config.vision_feature_layer,
        vision_feature_select_strategy=predictor.model.config.vision_feature_select_strategy).pooler_output
    assert placeholders == feats[0].shape[0] == (32 // 8) ** 2  # 16 patches, CLS dropped ("default")


def test_expand2square_pastes_the_image_centred_on_the_mean_colour() -> None:
    wide = Image.new("RGB", (4, 2), (255, 0, 0))
    square = expand2square(wide, (122, 116, 104))
    assert square.size == (4, 4)
    rows = [[square.getpixel((x, y)) for x in range(4)] for y in range(4)]
    pad, red = (122, 116, 104), (255, 0, 0)
    assert rows == [[pad] * 4, [red] * 4, [red] * 4, [pad] * 4]  # offset (4 - 2) // 2 = 1
    tall = expand2square(Image.new("RGB", (1, 4), red), pad)
    assert [tall.getpixel((x, 0)) for x in range(4)] == [pad, red, pad, pad]  # offset (4 - 1) // 2 = 1
    assert expand2square(square, (0, 0, 0)) is square


def test_pad_and_crop_differ_exactly_as_llava_pads(predictor) -> None:
    processor = predictor.processor.image_processor
    wide = Image.new("RGB", (64, 32), (255, 0, 0))
    padded = pixel_values([wide], processor, aspect_ratio="pad")
    cropped = pixel_values([wide], processor, aspect_ratio="crop")
    mean, std = torch.tensor(processor.image_mean), torch.tensor(processor.image_std)
    # crop: the red centre fills the square; pad: the top and bottom quarters are the mean colour (122, 116, 104)
    red = (torch.tensor([1.0, 0.0, 0.0]) - mean) / std
    grey = (torch.tensor([122, 116, 104]) / 255 - mean) / std
    assert torch.allclose(cropped[0, :, 16, 16], red, atol=1e-4)
    assert torch.allclose(padded[0, :, 2, 16], grey, atol=1e-4) and torch.allclose(padded[0, :, 16, 16], red, atol=1e-4)


class BosTokenizer:
    """A stand-in for LLaMA's tokenizer: one id per character, BOS (1) in front of every call."""

    bos_token_id = 1

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [1, *(ord(c) for c in text)]}


def test_pieces_are_tokenized_apart_and_later_bos_tokens_dropped() -> None:
    parts = ("ab", "\ncd")
    ids = prompt_ids(parts, BosTokenizer(), image_token_id=-200, num_image_tokens=3)
    assert ids == [1, ord("a"), ord("b"), -200, -200, -200, ord("\n"), ord("c"), ord("d")]  # tokenizer_image_token


@pytest.mark.parametrize("name", ["vqav2", "gqa", "vizwiz", "okvqa", "pope", "mme", "mmvet", "seed", "mmbench",
                                  "mmmu", "flickr30k"])
def test_the_ids_decode_to_the_prompt_string(predictor, name) -> None:
    """The ids the model reads are the prompt test_reference_prompts.py pins, the image one run of 16 placeholders
    (GPT-2's byte-level BPE decodes back to the exact text)."""
    cfg = reference_config()
    q = build_task(name, cfg.benchmarks[name]).queries()[0]
    row = predictor.inputs([q])["input_ids"][0].tolist()
    first = row.index(predictor.image_token_id)
    last = len(row) - row[::-1].index(predictor.image_token_id)
    text = predictor.tokenizer.decode(row[:first]) + "<image>" + predictor.tokenizer.decode(row[last:])
    assert text == predictor.prompt(q) and row[first:last] == [predictor.image_token_id] * 16
    assert predictor.prompt(q) == llava_prompt(q.prompt, image=True)


def test_a_text_only_query_reads_no_image(predictor, queries) -> None:
    q = Query(1, "answer", queries[0].prompt, None)
    inputs = predictor.inputs([q])
    assert "pixel_values" not in inputs and predictor.image_token_id not in inputs["input_ids"][0].tolist()
    assert predictor.tokenizer.decode(inputs["input_ids"][0]) == predictor.prompt(q) == prompt_parts(q.prompt,
                                                                                                     image=False)[0]


@pytest.mark.parametrize("kind", ["generate", "edit", "segment"])
def test_image_and_mask_queries_are_refused_naming_the_kind_and_model(predictor, kind) -> None:
    q = Query(id=7, kind=kind, prompt="a cat", image=None)
    with pytest.raises(DataError, match=rf"^llava15_7b \(random llava_hf\): .*the benchmark's '{kind}' queries "
                                        r"\(e\.g\. 7\)"):
        predictor.answer([q])


def test_a_question_holding_the_placeholder_is_refused() -> None:
    with pytest.raises(DataError, match="contains '<image>'"):
        prompt_parts("What is <image>?", image=True)


@pytest.mark.slow  # saves, reloads and generates with the tiny checkpoint
def test_a_saved_checkpoint_loads_as_pretrained_with_the_pil_processor(predictor, queries, tmp_path: Path) -> None:
    """The ``pretrained`` path on a local stand-in of the hub folder (the random model saved as transformers saves
    llava-hf's): the image processor comes back as the PIL one, and the answers are the random model's."""
    from dataclasses import replace

    predictor.model.save_pretrained(tmp_path)
    predictor.processor.save_pretrained(tmp_path)  # image_processor_type: CLIPImageProcessor, as on the hub
    cfg = reference_config()
    cfg = replace(cfg, reference=replace(cfg.reference, source="pretrained", name=str(tmp_path)))
    loaded = ReferencePredictor(cfg)
    assert type(loaded.processor.image_processor).__name__ == "CLIPImageProcessorPil"
    assert loaded.tokenizer.padding_side == "left" and loaded.image_token_id == predictor.image_token_id
    assert loaded.answer(queries[:2]) == predictor.answer(queries[:2])


def test_a_missing_pretrained_checkpoint_is_one_line_naming_fetch_weights(monkeypatch, tmp_path: Path) -> None:
    from dataclasses import replace

    from setok.weights import MissingWeights

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    cfg = reference_config()
    cfg = replace(cfg, reference=replace(cfg.reference, source="pretrained", name="llava-hf/llava-1.5-7b-hf"))
    with pytest.raises(MissingWeights, match=r"^transformers:llava-hf/llava-1.5-7b-hf: not in the weights cache .*"
                                             r"fetch_weights") as e:
        ReferencePredictor(cfg)
    assert "\n" not in str(e.value)


def test_reference_max_new_tokens_caps_each_query_budget_and_nothing_else() -> None:
    from setok.config import ConfigError, ReferenceConfig

    p = ReferencePredictor.__new__(ReferencePredictor)  # the budget rule alone, no model
    long, short = Query(id=1, kind="answer", prompt="q", image=None, max_new_tokens=1024), \
        Query(id=2, kind="answer", prompt="q", image=None, max_new_tokens=16)
    p.max_new_tokens_cap = 64
    assert (p.budget(long), p.budget(short)) == (64, 16)
    p.max_new_tokens_cap = None
    assert (p.budget(long), p.budget(short)) == (1024, 16)
    with pytest.raises(ConfigError, match="reference.max_new_tokens: must be >= 1"):
        ReferenceConfig(max_new_tokens=0).check("reference")
