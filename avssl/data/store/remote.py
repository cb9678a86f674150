"""Stores in object storage: ``data.root`` as a URI that litdata reads (``s3://bucket/prefix``,
``gs://...``, ...).

A store uploaded as it was written (``aws s3 sync DST s3://bucket/prefix``) is read in place: its
two small description files (``avssl_store.json`` and litdata's ``index.json``) are downloaded
into avssl's cache (``$AVSSL_CACHE/stores/<hash of the URI>``) whenever a process reads the
store's description, and read from there; its chunks are
downloaded by litdata on demand, into litdata's own cache, by the process that reads them
(each rank and worker its own chunks when streaming). Credentials and endpoint come from the
environment as for the provider's own tools (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL`` for an
S3-compatible server, ...).

Nothing waits without end: every request to an ``s3://`` store times out after
``$AVSSL_STORAGE_TIMEOUT`` seconds (default 20) and is tried ``$AVSSL_STORAGE_RETRIES`` times
(default 3) where litdata's own client would try 1000 times; an unreachable or wrong endpoint,
or refused credentials, end in one error naming the object and the endpoint. Chunks downloaded
during training (litdata's obstore client) connect within ``$AVSSL_STORAGE_TIMEOUT`` and are
retried within object_store's bounds (10 tries within 180 s), and a chunk that still cannot be
read is read item by item, each failure skipped and counted (``data/failed``): a store that
goes away mid-run costs the videos it could not give, not the run.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from avssl.errors import ConfigError
from avssl.utils.cache import cache_dir

LOCAL_SCHEMES = ("", "file")
TIMEOUT_ENV, RETRIES_ENV = "AVSSL_STORAGE_TIMEOUT", "AVSSL_STORAGE_RETRIES"


def is_remote(root: str | Path) -> bool:
    """Whether ``root`` is an object-storage URI (``scheme://...``) rather than a local path."""
    text = str(root)
    return "://" in text and text.split("://", 1)[0] not in LOCAL_SCHEMES


def join(root: str, name: str) -> str:
    """``root/name`` for a URI or a local path."""
    return root.rstrip("/") + "/" + name


def storage_options(root: str) -> dict:
    """litdata's ``storage_options`` for ``root``: for ``s3://``, a client whose requests time out
    and are retried within the bounds of the module docstring."""
    if not str(root).startswith("s3://"):
        return {}
    import botocore.config

    timeout, retries = float(os.environ.get(TIMEOUT_ENV, 20)), int(os.environ.get(RETRIES_ENV, 3))
    limits = {"connect_timeout": timeout, "read_timeout": timeout, "retries": {"max_attempts": retries, "mode": "standard"}}
    return {"config": botocore.config.Config(**limits)}


def endpoint() -> str:
    """The object-storage endpoint requests go to (named in errors)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "the provider's default endpoint"


def _provider(root: str):
    from litdata.streaming.fs_provider import _get_fs_provider

    chunk_client_options()
    return _get_fs_provider(root, storage_options(root))


def fetch(root: str, name: str) -> Path:
    """A fresh local copy of ``root/name`` in avssl's cache; a :class:`ConfigError` names the
    object when it cannot be read."""
    local = cache_dir("stores", hashlib.sha1(root.encode()).hexdigest()[:16], name)
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_suffix(f"{local.suffix}.{os.getpid()}.part")  # processes may fetch it at once
    try:
        _provider(root).download_file(join(root, name), str(tmp))
    except Exception as e:  # the provider's SDK raises its own errors (no object, no credentials, no network)
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"data.root: cannot read {join(root, name)} from {endpoint()} ({type(e).__name__}: {e})") from None
    tmp.replace(local)
    return local


def missing(root: str, names: list[str]) -> list[str]:
    """The objects of ``names`` under ``root`` that do not exist (asked in parallel)."""
    provider = _provider(root)
    try:
        with ThreadPoolExecutor(16) as pool:
            found = list(pool.map(lambda name: provider.exists(join(root, name)), names))
    except Exception as e:  # the provider's SDK raises its own errors
        raise ConfigError(f"data.root: cannot list the chunks of {root} at {endpoint()} ({type(e).__name__}: {e})") from None
    return [name for name, ok in zip(names, found) if not ok]


def chunk_client_options() -> None:
    """Adjust the client options of litdata's chunk downloads (obstore, litdata 0.2.76):

    * ``allow_http``: reach an S3-compatible server over plain ``http://`` (MinIO, a local test
      server). litdata passes client options without it, and obstore then refuses every
      ``http://`` URL ("builder error: BadScheme"), whatever the endpoint; the option only
      permits such URLs;
    * ``connect_timeout``: ``$AVSSL_STORAGE_TIMEOUT`` seconds, so an endpoint that never answers
      a connection (a firewall dropping packets) fails a try in that time. litdata's request
      timeout (200 s, for large chunks on slow links) and object_store's retries (10 tries within
      180 s) are kept."""
    from litdata.streaming import downloader

    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
    if isinstance(options, dict):
        options.setdefault("allow_http", "true")
        options["connect_timeout"] = f"{float(os.environ.get(TIMEOUT_ENV, 20)):g}s"
