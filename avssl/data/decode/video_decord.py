"""The ``decord`` video backend: decord's ``VideoReader`` with frames resized inside the decoder.

decord numbers a video's frames from the start of the video stream; its times are shifted by
that stream's start onto the file's timeline. decord turns rotated frames itself, and its resize
to the display size stretches non-square pixels. decord 0.6.0 returns 4- or 6-channel buffers
for some output widths (e.g. 24, 48 or 72 px): :meth:`DecordVideo.frames` detects them and returns
``None``, so the caller decodes that file with PyAV.
"""

from __future__ import annotations

import numpy as np

from avssl.data.decode.probe import MediaInfo, displayed_index, past_last_frame


class DecordVideo:
    """Frames of one file through decord (one thread; the loader's workers parallelise)."""

    def __init__(self, path: str, info: MediaInfo, height: int, width: int):
        self.path, self.info, self.height, self.width = path, info, height, width
        self._reader = None
        self._frame_starts: np.ndarray | None = None
        self.truncated = False  # some window ran past the last decodable frame

    def frames(self, times: np.ndarray) -> np.ndarray | None:
        """uint8 ``[times.size, H, W, 3]`` of the frames showing at ``times``, or ``None`` when
        decord decoded a wrong shape."""
        import decord

        if self._reader is None:
            self._reader = decord.VideoReader(self.path, ctx=decord.cpu(0), width=self.width, height=self.height, num_threads=1)
            # decord's times count from the video stream's start; the timeline from the file's
            self._frame_starts = self._reader.get_frame_timestamp(np.arange(len(self._reader)))[:, 0] + (
                self.info.video_start - self.info.start
            )
        self.truncated |= past_last_frame(times, float(self._frame_starts[-1]), self.info)
        idx = displayed_index(times.reshape(-1), self._frame_starts)
        uniq, inverse = np.unique(idx, return_inverse=True)
        batch = self._reader.get_batch(uniq.tolist()).asnumpy()
        if batch.shape[1:] != (self.height, self.width, 3):
            return None  # decord 0.6.0 mis-strides some widths: let PyAV decode this file
        return batch[inverse]

    def close(self) -> None:
        self._reader = None
