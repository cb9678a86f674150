"""Reading a shard store: a dataset written once by ``avssl prepare SRC DST --format shards`` into
litdata's chunked format, cut into clips by the same clip sampling as media files: the training
split streamed by litdata's loader (each rank and worker its own chunks, resumable mid-epoch), the
other splits read by random access; in a local directory or in object storage.

Per source video, one litdata item holds its frames as JPEG (at the prepared short side and fps,
frame ``k`` shown from time ``k / fps`` on the source's presentation timeline, exactly the frames
an mp4 copy prepared with the same settings encodes) and its audio as mono 16-bit PCM at the
prepared rate on the same timeline (sample ``i`` at ``i / rate``, the samples of the mp4 copy's
sidecar). ``avssl_store.json`` beside litdata's ``index.json`` holds what the index needs without
reading a chunk: the settings, the classes, every record (video id, label, split, item) and each
item's frame count, size, duration and audio.

* :mod:`~avssl.data.store.meta`: the store's description (:class:`StoreMeta`), read and checked;
* :mod:`~avssl.data.store.read`: clip windows of one item (:class:`StoreDecoder`), in a worker;
* :mod:`~avssl.data.store.remote`: stores in object storage (``s3://...``);
* :mod:`~avssl.data.store.frames`: JPEG frames carried encoded to the batch's device
  (``data.decode_on: device``) and decoded there in one batched call.

Above it: the store's layout (:mod:`avssl.data.layouts.store`) and its training split streamed by
litdata (:mod:`avssl.data.streaming`). The writer behind ``avssl prepare --format shards`` is on
the write side (:mod:`avssl.prepare.shards`).
"""
