"""Prepared copies on the read side: what a copy's ``prepare_report.json`` says of its files.

``avssl prepare`` keeps each video's audio in a sidecar WAV (mono PCM16 at the prepared rate) and
lists, in the report at the copy's root, every source with its output and sidecar, or the reason
it was skipped. The index asks here, for each file it reads: a sidecar is used only when the
report of a directory above the video lists it as that video's audio (a WAV that merely shares
the video's name is never taken for its audio), and a missing file that the report says prepare
skipped is skipped for that reason. :func:`probe_file` hands both to the decoders' :func:`probe`,
which know nothing of any report.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from avssl.data.decode import DecodeError, MediaInfo, probe
from avssl.data.formats import PREPARE_REPORT


def probe_file(path: str, *, video: bool = True) -> MediaInfo:
    """:func:`~avssl.data.decode.probe` of ``path`` as the index reads it: with its sidecar when
    a prepared copy's report lists one; a missing file the report says ``avssl prepare`` skipped
    (its copy was never written) raises :class:`DecodeError` with that reason."""
    found = _prepared_entry(path)
    if found is None:
        return probe(path, video=video)
    root, files, rel = found
    if rel in files["skipped"] and not Path(path).exists():
        reason, detail = files["skipped"][rel]
        raise DecodeError(path, reason, f"skipped by avssl prepare: {detail}")
    return probe(path, video=video, sidecar=_sidecar(root, files, rel))


def sidecar_path(path: str) -> str | None:
    """The sidecar WAV that ``avssl prepare`` wrote for ``path``, if a ``prepare_report.json`` in a
    directory above it lists one (and it exists); ``None`` otherwise."""
    found = _prepared_entry(path)
    return _sidecar(*found) if found is not None else None


def _sidecar(root: Path, files: dict, rel: str) -> str | None:
    wav = files["sidecars"].get(rel)
    return str(root / wav) if wav and (root / wav).is_file() else None


def _prepared_entry(path: str) -> tuple[Path, dict, str] | None:
    """``(copy root, its report's tables, path relative to it)`` for the nearest directory above
    ``path`` holding a ``prepare_report.json``."""
    path = Path(path).resolve()
    for parent in path.parents:
        tables = _prepared_files(str(parent))
        if tables is not None:
            return parent, tables, path.relative_to(parent).as_posix()
    return None


@lru_cache(maxsize=256)
def _prepared_files(directory: str) -> dict[str, dict] | None:
    """From ``directory``'s ``prepare_report.json`` (``None`` when it has none): ``sidecars``
    ``{video: wav}`` of the prepared files, ``skipped`` ``{source: (reason, detail)}`` of the
    others (paths relative to ``directory``)."""
    report = Path(directory) / PREPARE_REPORT
    if not report.is_file():
        return None
    try:
        files = json.loads(report.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {"sidecars": {}, "skipped": {}}
    return {
        "sidecars": {f["output"]: f["audio"] for f in files.values() if f.get("status") == "prepared" and f.get("audio")},
        "skipped": {rel: (f["status"], f.get("detail", "")) for rel, f in files.items() if f.get("status") not in (None, "prepared")},
    }
