"""Tiny transfer benchmarks in their official layouts (UCF101, HMDB51, ESC-50, VGGSound), written
with real media files. Each class has its own colour and tone, so a randomly initialised encoder's
features already separate the classes: a protocol that mixes up labels and features shows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.media import write_media

COLOURS = [(230, 30, 30), (30, 230, 30), (30, 30, 230)]
TONES = [300.0, 1200.0, 3000.0]
SECONDS = 1.6
RATE = 16000


def clip(label: int, seed: int, *, seconds: float = SECONDS, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[F, size, size, 3]`` of the class colour with noise, and its tone ``[1, S]``."""
    rng = np.random.default_rng(seed)
    frames = np.clip(np.array(COLOURS[label])[None, None, None] + rng.normal(0, 20, (int(seconds * 25), size, size, 3)), 0, 255)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.4 * np.sin(2 * np.pi * TONES[label] * (1 + 0.02 * rng.standard_normal()) * t) + 0.02 * rng.standard_normal(t.size)
    return frames.astype(np.uint8), tone[None].astype(np.float32)


def write_clip(path: Path, label: int, seed: int, *, audio: bool = True, video: bool = True, seconds: float = SECONDS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames, tone = clip(label, seed, seconds=seconds)
    codec = "pcm_s16le" if path.suffix == ".wav" else "aac"
    video_codec = "mpeg4" if path.suffix == ".avi" else "libx264"  # UCF101 / HMDB51 are MPEG-4 Part 2 (XviD / DivX) AVIs
    return write_media(
        path, frames if video else None, audio=tone if audio else None, sample_rate=RATE, audio_codec=codec, video_codec=video_codec
    )


UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "Typing"]


def ucf101(root: Path, videos_per_class: int = 4) -> Path:
    """UCF101: ``ucfTrainTestlist/`` and ``UCF-101/<Class>/v_<Class>_gXX_cXX.avi``; group g01 (and
    in split 2, g02; in split 3, g03) is the test set. The HandstandPushups files are spelled
    ``v_HandStandPushups_...`` as in the download; odd-numbered groups have no audio track."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(UCF_CLASSES)))
    for split in (1, 2, 3):
        train, test = [], []
        for label, name in enumerate(UCF_CLASSES):
            spelled = "HandStandPushups" if name == "HandstandPushups" else name
            for g in range(1, videos_per_class + 1):
                relative = f"{name}/v_{spelled}_g{g:02d}_c01.avi"
                (test if g == split else train).append((relative, label))
        (lists / f"trainlist0{split}.txt").write_text("".join(f"{r} {label + 1}\n" for r, label in train))
        (lists / f"testlist0{split}.txt").write_text("".join(f"{r}\n" for r, _ in test))
    for label, name in enumerate(UCF_CLASSES):
        spelled = "HandStandPushups" if name == "HandstandPushups" else name
        for g in range(1, videos_per_class + 1):
            write_clip(root / "UCF-101" / name / f"v_{spelled}_g{g:02d}_c01.avi", label, 100 * label + g, audio=g % 2 == 0)
    return root


HMDB_CLASSES = ["brush_hair", "cartwheel", "chew"]


def hmdb51(root: Path, videos_per_class: int = 4) -> Path:
    """HMDB51: ``testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`` and
    ``hmdb51_org/<class>/<name>.avi``. In split ``s`` video ``s`` is test (2), the last video is
    unused (0), the others train (1). No audio tracks."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for label, name in enumerate(HMDB_CLASSES):
        files = [f"{name}_clip{i}.avi" for i in range(1, videos_per_class + 1)]
        for split in (1, 2, 3):
            ids = ["2" if i == split else "0" if i == videos_per_class else "1" for i in range(1, videos_per_class + 1)]
            (splits / f"{name}_test_split{split}.txt").write_text("".join(f"{f} {x} \n" for f, x in zip(files, ids)))
        for i, f in enumerate(files, 1):
            write_clip(root / "hmdb51_org" / name / f, label, 1000 + 100 * label + i, audio=False)
    return root


ESC_CLASSES = ["dog", "rain", "siren"]


def esc50(root: Path, per_fold: int = 1) -> Path:
    """ESC-50: ``meta/esc50.csv`` and ``audio/<fold>-<src>-A-<target>.wav`` (5 s in the real data;
    shorter here), ``per_fold`` files per class and fold."""
    (root / "meta").mkdir(parents=True)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, name in enumerate(ESC_CLASSES):
            for k in range(per_fold):
                filename = f"{fold}-{1000 * target + k}-A-{target}.wav"
                rows.append(f"{filename},{fold},{target},{name},False,{1000 * target + k},A")
                write_clip(root / "audio" / filename, target, 10 * fold + 100 * target + k, video=False)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


VGG_CLASSES = ["dog barking", "playing violin", "rain on surface"]


def vggsound(root: Path, videos_per_class: int = 3, header: bool = False) -> Path:
    """VGGSound: ``vggsound.csv`` (``youtube_id,start_seconds,label,split``) and ``video/``; the
    first class's files are full videos named by the id (clip at the listed start), the others
    pre-cut ``<id>_<start:06d>.mp4``; the first video of each class is test."""
    rows = ["youtube_id,start_seconds,label,split"] if header else []
    for label, name in enumerate(VGG_CLASSES):
        for i in range(videos_per_class):
            youtube_id = f"yt{label}{i}abcdef"
            start = 2 if label == 0 else 30
            rows.append(f"{youtube_id},{start},{name},{'test' if i == 0 else 'train'}")
            if label == 0:  # a full video: 2 s of another class's colour, then this class from the start on
                write_full(root / "video" / f"{youtube_id}.mp4", label, start, seed=10 * label + i)
            else:
                write_clip(root / "video" / f"{youtube_id}_{start:06d}.mp4", label, 10 * label + i)
    (root / "vggsound.csv").write_text("\n".join(rows) + "\n")
    return root


def write_full(path: Path, label: int, start: int, seed: int) -> Path:
    """A video whose first ``start`` seconds show and sound like another class (label + 1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before_frames, before_tone = clip((label + 1) % len(COLOURS), seed + 7, seconds=start)
    frames, tone = clip(label, seed)
    return write_media(path, np.concatenate([before_frames, frames]), audio=np.concatenate([before_tone, tone], 1), sample_rate=RATE)
