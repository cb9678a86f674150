"""Distributed correctness on CPU: 2 processes, gloo, different data on each rank."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avssl.data.formats import PrepareConfig
from avssl.methods import CAVMAE, BarlowTwins, CrossModal, MoCoV3, SimCLR, VICReg
from avssl.models.backbone import BackboneConfig
from avssl.prepare.shards import write_store
from avssl.utils.dist import all_gather_no_grad, rank, world_size
from tests.conftest import TINY, TINY_DATA_ARGS

WORLD = 2
B = 6  # per process; the single-process reference sees 2 x 6 = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# methods whose loss sees the global batch: the embeddings are gathered with their gradient
GLOBAL_BATCH = {"simclr": SimCLR, "vicreg": VICReg, "barlow_twins": BarlowTwins, "cross_modal": CrossModal}


def build(name: str):
    torch.manual_seed(0)
    kwargs = {"positive": "other_clip", "audio_weight": 0.5} if name == "cross_modal" else {}  # every term of the objective
    return GLOBAL_BATCH[name](
        backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=32, proj_dim=16, **kwargs
    ).eval()  # eval: the projectors' BN uses fixed statistics (the loss's own batch statistics stay)


def cavmae_contrastive(rows: slice):
    """CAV-MAE's contrastive term of rows ``rows`` of fixed per-view audio and video embeddings,
    through a linear layer whose gradients compare the runs."""
    torch.manual_seed(0)
    model = CAVMAE(
        backbone=BackboneConfig(encoder="vit", dim=8, depth=1, heads=2, shared_depth=1, fusion="joint"),
        decoder_dim=8,
        decoder_depth=1,
        decoder_heads=2,
        contrastive_weight=1.0,
    )
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(WORLD * B, 2, 2, 8, generator=torch.Generator().manual_seed(2))[rows]  # [B, views, audio / video, D]
    loss = model.contrastive_loss(layer(x[:, :, 0]), layer(x[:, :, 1]))
    loss.backward()
    return loss.detach(), {k: p.grad for k, p in layer.named_parameters()}


def heads(m) -> dict:
    return dict((m.projectors if hasattr(m, "projectors") else m.projector).named_parameters())


def features():
    return torch.randn(WORLD * B, 2, build("simclr").backbone.out_dim, generator=torch.Generator().manual_seed(1))


def worker(r: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=r, world_size=WORLD)
    try:
        assert rank() == r and world_size() == WORLD
        results = {}
        for name in GLOBAL_BATCH:
            m = build(name)
            loss, _ = m.ssl_loss(features()[r * B : (r + 1) * B], {})  # this rank's half of the batch
            loss.backward()
            grads = {}
            for key, p in heads(m).items():  # what DDP does: average the gradients over ranks
                dist.all_reduce(p.grad)
                grads[key] = p.grad / WORLD
            results[name] = {"loss": loss.detach(), "grads": grads}
        loss, grads = cavmae_contrastive(slice(r * B, (r + 1) * B))
        for g in grads.values():
            dist.all_reduce(g)
            g /= WORLD
        results["cavmae"] = {"loss": loss, "grads": grads}
        moco = MoCoV3(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=8, proj_dim=4, queue_size=8)
        keys = torch.full((3, 4), float(r + 1))
        moco.enqueue(all_gather_no_grad(keys))
        torch.save({"methods": results, "queue": moco.queue.clone(), "queue_len": moco.queue_len}, f"{out}/rank{r}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one_process_on_the_concatenated_batch(tmp_path):
    """SimCLR, VICReg, Barlow Twins, the cross-modal method and CAV-MAE's contrastive term: loss and gradients of 2 processes x B
    equal those of 1 process x 2B (their batch statistics and negatives are global)."""
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    got = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for name in GLOBAL_BATCH:
        m = build(name)
        loss, _ = m.ssl_loss(features(), {})
        loss.backward()
        for r in range(WORLD):
            result = got[r]["methods"][name]
            torch.testing.assert_close(result["loss"], loss.detach(), atol=1e-5, rtol=0, msg=name)
            for key, p in heads(m).items():
                torch.testing.assert_close(result["grads"][key], p.grad, atol=1e-5, rtol=1e-5, msg=f"{name} {key}")
    loss, grads = cavmae_contrastive(slice(None))  # CAV-MAE's contrastive term: negatives from both ranks
    for r in range(WORLD):
        torch.testing.assert_close(got[r]["methods"]["cavmae"]["loss"], loss, atol=1e-5, rtol=0)
        for key, grad in grads.items():
            torch.testing.assert_close(got[r]["methods"]["cavmae"]["grads"][key], grad, atol=1e-5, rtol=1e-5, msg=f"cavmae {key}")
    for r in range(WORLD):  # the queue of every rank holds the keys of both ranks, rank 0's first
        assert int(got[r]["queue_len"]) == 6
        torch.testing.assert_close(got[r]["queue"][:6, 0], torch.tensor([1.0, 1, 1, 2, 2, 2]))


@pytest.mark.parametrize("data", ["media files", "shard store"])
def test_lightning_ddp_fit_fills_the_moco_queue_from_both_ranks(data, tiny_root, tmp_path):
    """`avssl fit` under Lightning DDP (2 CPU processes, gloo): 2 steps x 4 clips x 2 ranks = 16 keys,
    from the synthetic mp4 files or from their shard store decoded on the device (after the transfer),
    loaded by a worker process per rank."""
    ckpt_dir = tmp_path / "ckpt"
    if data == "media files":
        data_args = [f"--data.synthetic_root={tiny_root}"]
    else:
        store = tmp_path / "store"
        write_store(
            tiny_root, store, PrepareConfig(format="shards", short_side=40, fps=TINY.fps, audio_rate=16000), workers=1, progress=False
        )
        data_args = [f"--data.root={store}", "--data.decode_on=device", "--data.num_workers=1"]
    args = [
        "fit",
        "--config=configs/mocov3.yaml",
        *TINY_DATA_ARGS,
        *data_args,
        "--data.short_side=40",
        "--data.augment.crop_size=32",
        "--data.sample_rate=16000",
        "--model.init_args.backbone.width=4",
        "--model.init_args.backbone.layers=[1, 1, 1, 1]",
        "--model.init_args.proj_hidden_dim=16",
        "--model.init_args.proj_dim=8",
        "--model.init_args.queue_size=64",
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.max_steps=2",
        "--trainer.limit_val_batches=0",
        "--trainer.callbacks=[]",
        "--trainer.callbacks+=ModelCheckpoint",
        f"--trainer.callbacks.dirpath={ckpt_dir}",
        "--trainer.callbacks.save_last=true",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "avssl", *args], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    state = torch.load(ckpt_dir / "last.ckpt", weights_only=True)["state_dict"]
    assert int(state["queue_len"]) == 16
    assert state["queue"][:16].abs().sum(dim=1).gt(0).all() and state["queue"][16:].abs().sum() == 0
    assert torch.unique(state["queue"][:16], dim=0).shape[0] == 16  # the ranks saw different clips
