"""The write side: everything that writes a dataset once, offline, for the read side
(:mod:`avssl.data`) to read. It imports the read side (its decoders, layouts and the names in
:mod:`avssl.data.formats`); the read side never imports it.

* :mod:`~avssl.prepare.command`: ``avssl prepare SRC DST`` (``--format mp4`` or ``shards``);
* :mod:`~avssl.prepare.timeline`: the prepared timeline both formats store (frames at a constant
  fps, audio at a fixed rate);
* :mod:`~avssl.prepare.mp4`: the re-encoder to an mp4 copy (H.264 + WAV sidecars);
* :mod:`~avssl.prepare.shards`: the shard store writer (litdata chunks of JPEG frames and PCM);
* :mod:`~avssl.prepare.synthetic`: the embedded synthetic dataset's generator (``avssl synth``).
"""
