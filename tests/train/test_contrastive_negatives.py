"""SeTok's contrastive negatives come from every GPU's micro-batch (Eq. 5-6, "among the batch B"; paper-notes M6).

Two CPU ranks (gloo) each hold half of a batch of four labelled images. With ``negatives: all_ranks`` the contrastive
loss each rank computes equals the one-process loss on the four images, and the gradient averaged over the ranks (what
the engine does) equals the one-process gradient of ``mean_r L_rec,r + L_con(all images)``. With ``micro_batch`` (the
behaviour before) each rank's loss sees two images only, and differs.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_tokenizer_training import tiny_config  # tests/train is on sys.path (pytest rootdir import)

from setok.modeling.build import build_setok
from setok.train.gather import gather_rows, pad_tokens
from setok.train.tokenizer import setok_loss

LABELS = [["cat"], ["dog"], ["car"], ["tree"]]  # one label each: the concept draw does not depend on the split


def images() -> torch.Tensor:
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def loss_and_grad(negatives: str, part: slice) -> tuple[dict[str, float], torch.Tensor]:
    """``setok_loss`` logs on ``images()[part]`` and the gradient of its total at the text projection."""
    cfg = tiny_config()
    loss = replace(cfg.tokenizer.loss, negatives=negatives, objects_per_image=1, prompt_templates=["A photo of a {}."])
    cfg = replace(cfg, tokenizer=replace(cfg.tokenizer, loss=loss))
    torch.manual_seed(0)
    model, text = build_setok(cfg.tokenizer)
    batch = {"image": images()[part], "labels": LABELS[part], "contrastive": torch.ones(len(LABELS[part]), dtype=bool)}
    loss, logs = setok_loss(model, text, batch, cfg, step=0)
    loss.backward()
    return logs, model.text_projection.weight.grad.clone()


def _rank(rank: int, world: int, store: str, negatives: str, out: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        logs, grad = loss_and_grad(negatives, slice(2 * rank, 2 * rank + 2))
        dist.all_reduce(grad)  # the engine averages gradients over ranks
        torch.save({"logs": logs, "grad": grad / world}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def two_ranks(tmp_path: Path, negatives: str) -> list[dict]:
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), negatives, str(tmp_path)), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]


@pytest.fixture(scope="module")
def one_process() -> tuple[dict[str, float], torch.Tensor]:
    return loss_and_grad("all_ranks", slice(0, 4))


def test_two_ranks_compute_the_one_process_loss_on_the_whole_batch(tmp_path, one_process):
    logs, grad = one_process
    ranks = two_ranks(tmp_path, "all_ranks")
    for r in ranks:
        assert r["logs"]["contrastive"] == pytest.approx(logs["contrastive"], rel=1e-5)
    torch.testing.assert_close(ranks[0]["grad"], grad, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(ranks[1]["grad"], grad, rtol=1e-4, atol=1e-7)


def test_micro_batch_negatives_see_one_rank_only(tmp_path, one_process):
    logs, _ = one_process
    ranks = two_ranks(tmp_path, "micro_batch")
    assert all(abs(r["logs"]["contrastive"] - logs["contrastive"]) > 1e-3 for r in ranks)


def _uneven(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        x = torch.full((rank + 1, 2), float(rank + 1), requires_grad=True)  # rank 0: 1 row of 1s, rank 1: 2 of 2s
        rows = gather_rows(x)
        (rows.sum(0) * torch.tensor([1.0, 10.0])).sum().backward()  # every rank's loss reads every row
        mask = gather_rows(torch.tensor([rank == 0] * (rank + 1)))
        tokens = pad_tokens(torch.arange(3 * (rank + 2), dtype=torch.float32).view(1, rank + 2, 3))
        torch.save({"rows": rows.detach(), "grad": x.grad, "mask": mask, "tokens": tokens}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gather_rows_with_uneven_batches_masks_and_token_counts(tmp_path):
    mp.spawn(_uneven, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    expected = torch.tensor([[1.0, 1.0], [2.0, 2.0], [2.0, 2.0]])
    torch.testing.assert_close(r0["rows"], expected)
    torch.testing.assert_close(r1["rows"], expected)
    # d/dx of the sum over both ranks' losses: 2 ranks x [1, 10] per row.
    torch.testing.assert_close(r0["grad"], torch.tensor([[2.0, 20.0]]))
    torch.testing.assert_close(r1["grad"], torch.tensor([[2.0, 20.0], [2.0, 20.0]]))
    assert r0["mask"].tolist() == r1["mask"].tolist() == [True, False, False]
    # rank 0 had 2 tokens, rank 1 had 3: rank 0's are padded with copies of its first token.
    assert r0["tokens"].shape == r1["tokens"].shape == (1, 3, 3)
    torch.testing.assert_close(r0["tokens"][0, 2], r0["tokens"][0, 0])


def test_one_process_is_left_alone():
    x = torch.ones(2, 3, requires_grad=True)
    assert gather_rows(x) is x and pad_tokens(torch.ones(1, 2, 3)).shape == (1, 2, 3)
