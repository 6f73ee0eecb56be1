"""Prediction writers: a model's outputs (``{id: answer | image | mask}``) -> the OFFICIAL file each scorer reads.

One function per benchmark family; each reads the ids from the official reference file, refuses a model output that
misses or adds ids (one-line :class:`setok.io.DataError` naming them), and writes atomically (a partial file is never
left where a scorer could read it).

======================  ==============================================  ===========================================
writer                  output                                          scorer(s)
======================  ==============================================  ===========================================
write_vqa               ``[{"question_id", "answer"}]`` JSON            vqav2, okvqa
write_vizwiz            ``[{"image", "answer"}]`` JSON                  vizwiz
write_gqa               ``[{"questionId", "prediction"}]`` JSON         gqa
write_pope              folder of ``<split>.jsonl`` {question_id,text}  pope
write_mme               folder of ``<subtask>.txt`` (4 tab fields)      mme
write_seed              JSONL ``{"question_id", "prediction"}``         seed
write_mmbench           JSONL ``{"index", "prediction"}``               mmbench
write_mmmu              JSONL ``{"id", "prediction"}``                  mmmu
write_captions          ``[{"image_id", "caption"}]`` JSON              cider, coco_caption, flickr30k
write_mmvet             ``{"v1_0": "answer", ...}`` JSON                mmvet
write_masks             ``[{"id", "segmentation": RLE}]`` JSON          refcoco, refcoco+, refcocog, reasonseg
write_generated_images  folder of ``<id>.png``                          genai_bench, mjhq_fid, coco_fid, fid
write_edited_images     folder mirroring the targets' relative paths    magicbrush, evr, ma5k
======================  ==============================================  ===========================================
"""

from evaluation.writers.answers import (
    write_captions,
    write_gqa,
    write_mmbench,
    write_mmmu,
    write_mmvet,
    write_seed,
    write_vizwiz,
    write_vqa,
)
from evaluation.writers.folders import write_mme, write_pope
from evaluation.writers.images import genai_bench_ids, mjhq_ids, write_edited_images, write_generated_images
from evaluation.writers.masks import reference_sizes, write_masks

__all__ = [
    "genai_bench_ids",
    "mjhq_ids",
    "reference_sizes",
    "write_captions",
    "write_edited_images",
    "write_generated_images",
    "write_gqa",
    "write_masks",
    "write_mmbench",
    "write_mme",
    "write_mmmu",
    "write_mmvet",
    "write_pope",
    "write_seed",
    "write_vizwiz",
    "write_vqa",
]
