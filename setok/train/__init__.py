"""Trainers (DeepSpeed) and one entry module per stage (``python -m setok.train.tokenizer``)."""
