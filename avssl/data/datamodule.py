"""AVDataModule: a dataset root's catalog -> clip datasets -> loaders.

It loads clips and nothing more: the views the models see are made by whoever consumes the
batches (:mod:`avssl.augment.views`), from the view settings this module carries
(:attr:`AVDataModule.views`) so that a config types them once, under ``data:``."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from avssl.augment.audio import SpectrogramConfig
from avssl.augment.pipeline import AugmentConfig
from avssl.augment.views import ViewSpec
from avssl.data import layouts
from avssl.data.dataset import DECODE_ON, AVClipDataset, ClipSpec
from avssl.data.decode import DEFAULT_VIDEO_BACKEND
from avssl.data.formats import FORMATS, MANIFEST, STORE_META
from avssl.data.layouts import STREAMS, Catalog, ReadOptions, VideoRecord
from avssl.data.layouts import synthetic as embedded
from avssl.data.layouts.synthetic import SyntheticSpec
from avssl.data.loaders import LoaderSpec
from avssl.data.store.remote import is_remote
from avssl.data.streaming import StoreLoader, StoreStream
from avssl.errors import ConfigError
from avssl.spec import InputSpec
from avssl.utils.plain import plain

log = logging.getLogger(__name__)


class AVDataModule(pl.LightningDataModule):
    """Audio-visual clips for pre-training and evaluation.

    Args:
        root: a dataset directory in any layout of :mod:`avssl.data.layouts`: a shard store
            written by ``avssl prepare --format shards`` (a directory, or a URI in object storage
            such as ``s3://bucket/prefix``, :mod:`avssl.data.store.remote`), the AVE download
            (``Annotations.txt`` and the split files), a transfer benchmark in its official layout
            (UCF101, HMDB51, ESC-50, VGGSound), a synthetic set written by ``avssl synth``, a
            directory with a ``manifest.csv`` (``path,label[,split]``) or a folder of videos
            (unlabeled, all train). ``None`` uses the embedded synthetic dataset, built on first
            use under ``synthetic_root``.
        layout: how to read ``root``: ``auto`` (recognised from its files, in the order above) or
            a layout's name (``ave``, ``ucf101``, ``hmdb51``, ``esc50``, ``vggsound``,
            ``synthetic``, ``manifest``, ``folder``).
        split: the official split of a transfer benchmark (UCF101 / HMDB51: 1-3; ESC-50: the
            test fold, 1-5).
        streams: the streams to decode, ``[video, audio]``, ``[video]`` or ``[audio]``; default:
            the ones the data has (UCF101 and HMDB51 are read video-only, ESC-50 audio-only).
            Pre-training needs both.
        drop_cross_split_duplicates: AVE only: keep a VideoID that appears in several splits only
            in the first of train, val, test (default: keep every row, report the overlap).
        allow_missing_audio: keep videos without an audio stream, with silent audio (counted per
            batch as ``data/silent_audio``); default: skip them (counted as ``no_audio_stream``).
        synthetic: parameters of the synthetic dataset (used when ``root`` is ``None``).
        synthetic_root: where the synthetic dataset lives (default: a cache directory keyed by
            its parameters).
        synthetic_format: ``mp4`` (the synthetic set's files) or ``shards`` (a store written from
            them once at the clips' short side and audio rate; fastest with ``decode_on: device``).
        batch_size: videos per batch per process (each gives ``num_clips`` clips).
        num_workers: DataLoader worker processes (decoding only).
        clip_seconds: clip length in seconds (paper: 1.28).
        num_frames: frames per clip ``T``.
        num_clips: positive clips per video in pre-training (>= 2).
        eval_clips: uniformly spaced clips per video in testing.
        eval_crops: spatial crops per clip in validation / testing (3: left / centre / right);
            a view setting, made by the batches' consumer (:mod:`avssl.augment.views`).
        short_side: short side of decoded frames in pixels (aspect ratio kept; frames of
            different shapes share a batch by padding, see :mod:`avssl.data.dataset`).
        sample_rate: audio rate in Hz (paper: 44100).
        gap_power: ``p`` of the CVRL gap density (``null`` for uniform).
        min_gap: least gap in seconds between the starts of a video's positive clips (0: CVRL's
            sampling; ``clip_seconds``: positives never overlap in time). Beyond the paper.
        augment: training augmentations (crop, flip, temporal, normalisation); with
            ``spectrogram``, ``eval_crops`` and ``seed`` the settings of the views
            (:attr:`views`) the batches' consumer makes.
        spectrogram: log-mel parameters.
        seed: base seed of clip sampling, shuffling and of the training views' draws.
        timeout: seconds a worker may take for one batch before the loader fails with an error
            naming the files being decoded (with ``num_workers > 0``).
        video_backend: ``pyav`` (default; skips the frames no clip shows), ``decord`` or
            ``torchcodec`` (see :mod:`avssl.data.decode` and the data guide's loader table).
        decode_on: where video frames are decoded (:mod:`avssl.data.encoded`): ``worker`` (in the
            loader's workers), ``device`` (workers return the encoded frames: a shard store's JPEG
            frames, or with ``video_backend: torchcodec`` a media file's bytes; the batch is
            decoded on its device after the transfer: nvjpeg / NVDEC on CUDA) or ``auto``
            (default: ``device`` for a shard store when CUDA is available, else ``worker``).
        prefetch_factor: batches each worker loads ahead (``null``: PyTorch's default, 2); raise it
            when a fast GPU waits on data between slow batches (docs/guides/gpu.md).
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        layout: str = "auto",
        split: int = 1,
        streams: list[str] | None = None,
        synthetic: SyntheticSpec = SyntheticSpec(),
        synthetic_root: str | None = None,
        synthetic_format: str = "mp4",
        drop_cross_split_duplicates: bool = False,
        allow_missing_audio: bool = False,
        batch_size: int = 128,
        num_workers: int = 4,
        clip_seconds: float = 1.28,
        num_frames: int = 8,
        num_clips: int = 2,
        eval_clips: int = 10,
        eval_crops: int = 1,
        short_side: int = 128,
        sample_rate: int = 44100,
        gap_power: float | None = 1.0,
        min_gap: float = 0.0,
        augment: AugmentConfig = AugmentConfig(),
        spectrogram: SpectrogramConfig = SpectrogramConfig(),
        seed: int = 0,
        timeout: float = 300.0,
        video_backend: str = DEFAULT_VIDEO_BACKEND,
        decode_on: str = "auto",
        prefetch_factor: int | None = None,
    ):
        super().__init__()
        # in every checkpoint, in plain types (weights-only loading): evaluations take the encoder's settings
        self.save_hyperparameters(plain({k: v for k, v in locals().items() if k not in ("self", "__class__")}))
        # what a clip is, validated once (the datasets of every split share it)
        self._clip = ClipSpec(
            clip_seconds=clip_seconds,
            num_frames=num_frames,
            short_side=short_side,
            sample_rate=sample_rate,
            video_backend=video_backend,
            streams=tuple(streams) if streams is not None else STREAMS,
            allow_missing_audio=allow_missing_audio,
            decode_on="worker",  # resolved with the layout, below
        )
        self.loading = LoaderSpec(batch_size, num_workers, timeout, prefetch_factor, seed)
        check_settings(self._clip, augment, spectrogram, num_clips=num_clips, eval_clips=eval_clips, min_gap=min_gap, gap_power=gap_power)
        self._layout = choose_layout(root, layout, split, synthetic_format)
        self.root, self.split = root, split
        self.synthetic = synthetic
        self.synthetic_root = Path(synthetic_root) if synthetic_root else embedded.default_root(synthetic)
        self.synthetic_store = embedded.store_root(self.synthetic_root, short_side, sample_rate) if synthetic_format == "shards" else None
        self._clip = dataclasses.replace(self._clip, decode_on=resolve_decode_on(decode_on, self._layout.name, video_backend))
        self.read_options = ReadOptions(split=split, drop_cross_split_duplicates=drop_cross_split_duplicates)
        self._streams = tuple(streams) if streams is not None else None
        self.catalog: Catalog | None = None
        self.batch_size, self.num_workers = batch_size, num_workers  # read by the consumers (learning rate, feature passes)
        self.num_clips, self.eval_clips, self.gap_power, self.min_gap, self.seed = num_clips, eval_clips, gap_power, min_gap, seed
        self._views = ViewSpec(sample_rate, augment, spectrogram, eval_crops, seed)
        self.datasets: dict[str, AVClipDataset] = {}

    # ------------------------------------------------------------------ index
    @property
    def layout(self) -> str:
        """The name of the layout ``root`` is read as (:mod:`avssl.data.layouts`)."""
        return self._layout.name

    @property
    def data_root(self) -> Path | str:
        """The directory read: ``root`` (a URI stays a string), or the synthetic set's."""
        return layouts.as_root(self.root) if self.root is not None else self.synthetic_store or self.synthetic_root

    @property
    def official_split(self) -> int | None:
        """``data.split`` when the layout has official splits, else ``None``."""
        return self.split if self._layout.num_splits is not None else None

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams decoded: ``data.streams``, else the ones the data has."""
        if self._streams is not None:
            return tuple(x for x in STREAMS if x in self._streams)
        if self._layout.declares_streams:  # the benchmarks' and the stores' catalogs say which streams they have
            return self.read_catalog().streams
        return STREAMS

    @property
    def clip(self) -> ClipSpec:
        """What a clip is: the clip settings with the streams decoded."""
        return dataclasses.replace(self._clip, streams=self.streams)

    @property
    def views(self) -> ViewSpec:
        """The settings of the views made of these clips, by their consumer (:mod:`avssl.augment.views`)."""
        return self._views

    @property
    def input_spec(self) -> InputSpec:
        """The encoder input these settings give (saved in pre-training checkpoints)."""
        return InputSpec.from_data_settings(dict(self.hparams))

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for an unlabeled folder): from the spec or the catalog."""
        if self.root is None:  # known before the set is built (the model's head is linked to it)
            return self.synthetic.num_classes
        return self.read_catalog().num_classes

    def prepare_data(self) -> None:
        """Build the synthetic dataset on first use (rank 0 only, as Lightning calls it)."""
        if self.root is None and not (self.data_root / (STORE_META if self.synthetic_store else MANIFEST)).exists():
            log.info("building the synthetic dataset (%s) under %s", self.synthetic, self.data_root)
            embedded.build(self.synthetic_root, self.synthetic, self.synthetic_store, self._clip.short_side, self._clip.sample_rate)

    @property
    def class_names(self) -> list[str] | None:
        """Category names by class index (AVE and the transfer benchmarks), else ``None``."""
        return self.read_catalog().classes

    def read_catalog(self) -> Catalog:
        """The catalog of every split (read once; the layout logs its report then)."""
        if self.catalog is None:
            self.catalog = self._layout.read(self.data_root, self.read_options)
        return self.catalog

    def all_records(self) -> list[VideoRecord]:  # every record of every split
        return self.read_catalog().records

    def records(self, split: str) -> list[VideoRecord]:
        chosen = [r for r in self.all_records() if r.split == split]
        if split == "train" and not chosen:
            where = self.data_root / MANIFEST if self.layout in ("manifest", "synthetic") else self.data_root
            raise ConfigError(f"data.root: no training videos found in {where}")
        return chosen

    def dataset(self, split: str, *, train: bool, num_clips: int | None = None) -> AVClipDataset:
        """Clips of ``split``; ``train=True`` samples positives, ``False`` uniform eval clips."""
        clips = num_clips or (self.num_clips if train else self.eval_clips)
        key = f"{split} split, {clips} {'training' if train else 'evaluation'} clips per video"  # in words: reports name it
        if key not in self.datasets:
            self.datasets[key] = self.clip_dataset(self.records(split), train=train, num_clips=clips)
            dataset = self.datasets[key]
            if len(dataset) == 0 and (split != "val" or dataset.skipped):
                raise ConfigError(f"data.root: no decodable videos in the {split} split (skipped: {dict(dataset.skipped)})")
            longest = max((dataset.duration(i) for i in range(len(dataset))), default=float("inf"))
            if longest < dataset.clip.clip_seconds:
                raise ConfigError(
                    f"data.clip_seconds: {dataset.clip.clip_seconds} s is longer than every video of the {split} split (longest {longest:.2f} s)"
                )
        return self.datasets[key]

    def counts(self) -> dict[str, dict]:
        """The videos of every dataset built so far, and those skipped with their reasons (what a
        run trained on, recorded in its checkpoints)."""
        return {key: {"videos": len(ds), "skipped": dict(ds.skipped)} for key, ds in self.datasets.items()}

    def clip_dataset(self, records: list[VideoRecord], *, train: bool, num_clips: int) -> AVClipDataset:
        """Clips of ``records`` as this data module cuts them (pre-training positives with
        ``train=True``, uniformly spaced evaluation clips otherwise)."""
        return AVClipDataset(
            records, self.clip, train=train, num_clips=num_clips, gap_power=self.gap_power, min_gap=self.min_gap, seed=self.seed
        )

    # ------------------------------------------------------------------ loaders
    def loader(self, dataset: AVClipDataset, *, shuffle: bool, drop_last: bool = False) -> DataLoader:
        """A map-style loader of ``dataset`` with this module's loader settings."""
        return self.loading.loader(dataset, shuffle=shuffle, drop_last=drop_last)

    def stream_loader(self, dataset: AVClipDataset) -> StoreLoader:
        """litdata's streaming loader of a store's training split (:mod:`avssl.data.streaming`):
        resumable mid-epoch from Lightning's checkpoints. Its workers start with each epoch
        (litdata hands them the epoch)."""
        return StoreLoader(StoreStream(dataset, "train", seed=self.seed), drop_last=True, **self.loading.settings())

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train", train=True)
        processes = self.trainer.world_size if self.trainer is not None else 1
        if len(dataset) < self.batch_size * processes:  # full batches only: zero training steps
            raise ConfigError(
                f"data.batch_size: the train split has {len(dataset)} decodable videos, fewer than one batch "
                f"({self.batch_size} per process x {processes} process(es)); training would run zero steps: lower data.batch_size"
            )
        if self.layout == "store":
            return self.stream_loader(dataset)
        return self.loader(dataset, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("val", train=False, num_clips=1), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("test", train=False), shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()


def check_settings(clip: ClipSpec, augment: AugmentConfig, spectrogram: SpectrogramConfig, **sampling) -> None:
    """Refuse clip and view settings that no dataset or view can use (``sampling``: the data
    module's ``num_clips``, ``eval_clips``, ``min_gap`` and ``gap_power``); each error names its
    ``data.*`` field."""
    for name, low in (("num_clips", 2), ("eval_clips", 1)):
        if sampling[name] < low:
            raise ConfigError(f"data.{name} must be >= {low}, got {sampling[name]}")
    if sampling["min_gap"] < 0:
        raise ConfigError(f"data.min_gap must be >= 0, got {sampling['min_gap']}")
    if sampling["gap_power"] is not None and not sampling["gap_power"] > 0:
        raise ConfigError(f"data.gap_power must be > 0 (or null: uniform gaps), got {sampling['gap_power']}")
    if clip.num_samples < spectrogram.n_fft:
        raise ConfigError(
            f"data.sample_rate: a {clip.clip_seconds} s clip at {clip.sample_rate} Hz has {clip.num_samples} samples, "
            f"fewer than one spectrogram window (data.spectrogram.n_fft {spectrogram.n_fft})"
        )
    for name, side in (("crop_size", augment.crop_size), ("eval_crop_size", augment.eval_crop_size)):
        if side is not None and side > clip.short_side:
            raise ConfigError(
                f"data.augment.{name}: {side} px crops are larger than the decoded short side (data.short_side {clip.short_side}); "
                "they would be up-scaled: lower the crop or raise the short side"
            )


def choose_layout(root: str | None, layout: str, split: int, synthetic_format: str = "mp4") -> layouts.Layout:
    """The layout ``root`` is read as (``None``: the embedded synthetic set, built under its root
    by ``prepare_data``, as files or as a store), its official ``split`` checked."""
    if root is not None and not is_remote(root) and not Path(root).is_dir():
        raise ConfigError(f"data.root: directory {root!r} does not exist")
    if synthetic_format not in FORMATS:
        raise ConfigError(f"data.synthetic_format must be one of {', '.join(FORMATS)}, got {synthetic_format!r}")
    if layout != "auto":
        layouts.get(layout)  # a mistyped name is an error, also for the embedded set
    embedded_layout = "store" if synthetic_format == "shards" else "synthetic"
    chosen = layouts.get(embedded_layout) if root is None else layouts.choose(root, layout)
    chosen.check_split(split)
    return chosen


def resolve_decode_on(requested: str, layout: str, video_backend: str) -> str:
    """Where frames are decoded: ``requested``, with ``auto`` resolved (``device`` for a shard
    store when CUDA is available, else ``worker``); ``device`` needs a store or torchcodec."""
    if requested not in ("auto", *DECODE_ON):
        raise ConfigError(f"data.decode_on must be one of auto, {', '.join(DECODE_ON)}, got {requested!r}")
    store = layout == "store"
    if requested == "device" and not store and video_backend != "torchcodec":
        raise ConfigError(
            f"data.decode_on: device decodes a shard store's JPEG frames, or media files with data.video_backend torchcodec, "
            f"on the batch's device; data.root is a {layout} of media files and data.video_backend is "
            f"{video_backend} (set it to torchcodec, or write a store with avssl prepare --format shards)"
        )
    if requested == "auto":  # nvjpeg: media files stay in the workers unless asked
        return "device" if store and torch.cuda.is_available() else "worker"
    return requested
