"""Pre-train on a shard store with Lightning DDP (2 CPU processes, gloo), writing each rank's
training batches (step, epoch, video ids, clip starts) to ``OUT/rank<r>.jsonl``. Run by
tests/data/test_store_stream.py as ``python -m tests.data.store_fit STORE OUT ...``: Lightning's
DDP launcher starts the second process by running this command again."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytorch_lightning as pl
import torch

from avssl.augment.pipeline import AugmentConfig
from avssl.data.datamodule import AVDataModule
from avssl.methods import SimCLR
from avssl.models.backbone import BackboneConfig


class RecordBatches(pl.Callback):
    def __init__(self, out: Path):
        self.out = out

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        row = {
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "videos": batch["video_id"],
            "starts": batch["start"].tolist(),
            "batches_before": trainer.fit_loop.epoch_loop.batch_progress.total.ready,
            "views": batch["video"].double().sum().item(),  # the augmented views
        }
        with open(self.out / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-steps", type=int, required=True)
    parser.add_argument("--save-at", type=int, default=0, help="save a checkpoint after this many steps")
    parser.add_argument("--resume", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = AVDataModule(
        args.store,
        batch_size=2,
        num_workers=args.workers,
        short_side=40,
        sample_rate=16000,
        clip_seconds=1.0,
        num_frames=4,
        augment=AugmentConfig(crop_size=32, eval_crop_size=32),
    )
    model = SimCLR(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=16, proj_dim=8)
    callbacks: list[pl.Callback] = [RecordBatches(args.out)]
    if args.save_at:
        callbacks.append(pl.callbacks.ModelCheckpoint(dirpath=args.out, every_n_train_steps=args.save_at, save_top_k=-1))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=args.max_steps,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(model, data, ckpt_path=args.resume)


if __name__ == "__main__":
    main()
