"""Nearest-neighbour retrieval with frozen features.

* Video retrieval (Xu et al., CVPR 2019, VCOP): every test video queries the training videos by
  cosine similarity of frozen features; recall@k is the fraction of queries with a video of their
  class among the k nearest. Features are video-level: the mean over uniformly spaced
  centre-cropped clips, as CoCLR (Han et al., NeurIPS 2020) does (VCOP queries with single clips).
* Cross-modal retrieval: on audio-visual data, a checkpoint pre-trained with the cross-modal term
  also gets audio -> video and video -> audio retrieval among the test videos through its
  projectors (instance-level recall@k, as CAV-MAE, Gong et al., ICLR 2023, reports it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from avssl.evaluation.features import encoder_datamodule, extract_features

log = logging.getLogger(__name__)
RECALL_AT = (1, 5, 10, 20)


def recall_at_k(
    query: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor, gallery_labels: torch.Tensor, ks: Sequence[int] = RECALL_AT
) -> dict[str, float]:
    """``{"R@k": %}``: the share of queries with at least one gallery item of their label among
    their ``k`` nearest by cosine similarity (``k`` capped at the gallery size)."""
    similarity = F.normalize(query.float(), dim=1) @ F.normalize(gallery.float(), dim=1).t()  # [Q, G]
    order = similarity.topk(min(max(ks), gallery.shape[0]), dim=1).indices  # [Q, K]
    hits = gallery_labels[order] == query_labels[:, None]  # [Q, K]
    return {f"R@{k}": 100.0 * hits[:, :k].any(dim=1).float().mean().item() for k in ks}


def retrieval(encoder, root: str, layout: str, split: int, *, clips: int, batch_size: int, num_workers: int) -> dict[str, dict]:
    """Recall@k of every readout the data has (``video``, ``audio``, ``fused``) for one split."""
    data = encoder_datamodule(encoder, root=root, layout=layout, split=split, batch_size=batch_size, num_workers=num_workers)
    train = extract_features(encoder, datamodule=data, split="train", clips=clips, batch_size=batch_size, num_workers=num_workers)
    test = extract_features(encoder, datamodule=data, split="test", clips=clips, batch_size=batch_size, num_workers=num_workers)
    for name, part in (("train", train), ("test", test)):
        if part.skipped:
            log.warning("retrieval: %d %s files could not be decoded and are left out: %s", len(part.skipped), name, part.skipped)
    gallery, queries = train.streams(), test.streams()
    metrics = {readout: recall_at_k(queries[readout], test.labels, gallery[readout], train.labels) for readout in queries}
    if encoder.stream_projectors is not None and test.audio is not None and test.video is not None:
        metrics.update(cross_modal_retrieval(encoder.stream_projectors, test.audio, test.video))
    return {
        "metrics": metrics,
        "num_queries": len(test.video_ids),
        "num_gallery": len(train.video_ids),
        "skipped": {**train.skipped, **test.skipped},
    }


@torch.no_grad()
def cross_modal_retrieval(projectors, audio: torch.Tensor, video: torch.Tensor) -> dict[str, dict[str, float]]:
    """Audio -> video and video -> audio retrieval among the held-out videos: each video's audio
    embedding queries every video embedding (and the reverse) by cosine similarity, through the
    checkpoint's cross-modal projectors applied to the video-level features; a hit is the query's
    own video among the k nearest (recall@k, instance level, as CAV-MAE reports it)."""
    za, zv = projectors["audio"](audio), projectors["video"](video)
    ids = torch.arange(len(audio))
    return {"audio->video": recall_at_k(za, ids, zv, ids), "video->audio": recall_at_k(zv, ids, za, ids)}
