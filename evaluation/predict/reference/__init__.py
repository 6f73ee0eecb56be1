"""Reference checkpoints through the evaluation pipeline (issue 20): a public MLLM (LLaVA-1.5-7B, llava-hf's
conversion) answers the same task queries as SeTokIM, its outputs go through the same writers and scorers, so the
scores can be held against the published ones.

==============  ==========================================================================================
module          what
==============  ==========================================================================================
conversation    LLaVA-1.5's vicuna_v1 prompt string and its piece-by-piece tokenization (tokenizer_image_token)
images          expand2square padding, the CLIP processor, placeholders per image
loading         the checkpoint (pretrained from the cache, or random for CI) and its LlavaProcessor
predictor       :class:`ReferencePredictor`: batches of answer/caption queries -> text, greedy
==============  ==========================================================================================
"""
from evaluation.predict.reference.predictor import ReferencePredictor, model_label, require_text_kinds

__all__ = ["ReferencePredictor", "model_label", "require_text_kinds"]
