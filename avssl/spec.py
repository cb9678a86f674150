"""What the encoder's input is: :class:`InputSpec`, defined once.

Frames per clip, clip length, audio rate, log-mel parameters and the pixel normalisation make an
encoder's input; an evaluation must feed it exactly what it was pre-trained on. The data module
derives its :attr:`~avssl.data.datamodule.AVDataModule.input_spec` from its settings, pre-training
saves it in every checkpoint (``checkpoint["input_spec"]``, beside the backbone's architecture in
``hyper_parameters.backbone``), and an evaluation applies it with :meth:`InputSpec.settings` and
checks a data module against it with :meth:`InputSpec.check` (one check, in the probe).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from avssl.errors import ConfigError

log = logging.getLogger(__name__)
CHECKPOINT_KEY = "input_spec"
METHOD_KEY = "method_class"  # the pre-training method's class path (also when built in Python, without the CLI)
DATA_COUNTS_KEY = "data_counts"  # the videos of each dataset a pre-training run built, and those skipped
# Where each field lives in the data module's settings (``data.<path>``); the spectrogram's
# sub-fields follow it (``spectrogram.hop_length``, ...).
DATA_PATHS = {
    "num_frames": "num_frames",
    "clip_seconds": "clip_seconds",
    "sample_rate": "sample_rate",
    "spectrogram": "spectrogram",
    "mean": "augment.mean",
    "std": "augment.std",
}


@dataclass(frozen=True)
class InputSpec:
    """The encoder's input.

    Args:
        num_frames: frames per clip.
        clip_seconds: clip length in seconds.
        sample_rate: audio rate in Hz.
        spectrogram: log-mel parameters (:class:`~avssl.augment.audio.SpectrogramConfig` as a dict).
        mean: per-channel mean of the video normalisation.
        std: per-channel standard deviation of the video normalisation.
    """

    num_frames: int
    clip_seconds: float
    sample_rate: int
    spectrogram: dict[str, Any]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "std", tuple(self.std))

    @classmethod
    def from_data_settings(cls, data: dict[str, Any]) -> InputSpec:
        """The input a data module with these (nested, plain) settings gives."""
        found = {}
        for name, path in DATA_PATHS.items():
            value: Any = data
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                raise ConfigError(f"data settings without {path!r}: not an avssl data module's settings")
            found[name] = value
        return cls(**found)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> InputSpec | None:
        """The spec a checkpoint carries (avssl 0.2 checkpoints: derived from their data module
        settings); ``None`` for checkpoints with neither."""
        if CHECKPOINT_KEY in checkpoint:
            return cls(**checkpoint[CHECKPOINT_KEY])
        data = checkpoint.get("datamodule_hyper_parameters")
        return cls.from_data_settings(data) if data else None

    def to_dict(self) -> dict[str, Any]:
        """Plain types (checkpoints load with ``weights_only=True``)."""
        return {**dataclasses.asdict(self), "mean": list(self.mean), "std": list(self.std)}

    def settings(self) -> dict[str, Any]:
        """``{data setting path: value}`` (``num_frames``, ``spectrogram.hop_length``, ``augment.mean``, ...)."""
        out = {}
        for name, path in DATA_PATHS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                out.update({f"{path}.{k}": v for k, v in value.items()})
            else:
                out[path] = list(value) if isinstance(value, tuple) else value
        return out

    def check(self, other: InputSpec, *, override: bool, source: str) -> None:
        """Refuse a data module whose input (``other``) differs from this encoder's, naming the
        setting and both values; with ``override`` log each difference instead."""
        given = other.settings()
        for path, trained in self.settings().items():
            value = given.get(path)
            if path not in given or same_setting(value, trained):
                continue
            if not override:
                raise ConfigError(
                    f"data.{path}: {value!r} conflicts with the encoder's pre-training value {trained!r} ({source}); "
                    f"drop the setting to evaluate with {trained!r}, or set model.init_args.override_input_settings=true"
                )
            log.warning("data.%s = %r as set, not the encoder's pre-training %r (%s)", path, value, trained, source)


def same_setting(a: Any, b: Any) -> bool:
    """Equal as settings (lists and tuples alike, ints and floats alike, dicts by key)."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_setting(x, y) for x, y in zip(a, b))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_setting(a[k], b[k]) for k in a)
    return a == b
