"""Local files, folders and .tar archives as recordings to ingest."""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ra_app.core.audio import MEDIA_EXTENSIONS
from ra_app.core.models import Origin, SourceKind

from ..errors import PermanentError
from .ingest import Recording

# Sidecar subtitles: name.vtt, name.srt, or with a language as yt-dlp writes them.
SIDECAR_SUFFIXES = (".vi.vtt", ".vi.srt", ".vtt", ".srt", ".en.vtt", ".en.srt")


def sidecar_for(media_path: Path) -> Path | None:
    stem = media_path.with_suffix("")
    for suffix in SIDECAR_SUFFIXES:
        candidate = stem.parent / (stem.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def recording_for_file(path: Path, kind=SourceKind.FILE, external_id: str | None = None):
    sidecar = sidecar_for(path)
    return Recording(
        path=str(path),
        kind=kind,
        external_id=external_id or str(path.resolve()),
        title=path.stem,
        subtitles_path=str(sidecar) if sidecar else None,
        subtitles_origin=Origin.SIDECAR_SUBTITLES if sidecar else None,
    )


def find_media(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files named on the command line are taken as they are (a wrong type is then reported
    by the ingest); folders are searched recursively for files with a media extension."""
    found: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS
            )
        elif path.is_file():
            found.append(path)
        else:
            missing.append((str(raw), "no such file or folder"))
    return found, missing


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why an archive member must not be unpacked, or None if it is a plain file inside."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        return "its path escapes the scratch folder"
    if member.issym() or member.islnk():
        return "links are not accepted in archives"
    if not member.isfile():
        return None if member.isdir() else "not a regular file"
    return None


def unpack_archive(
    tar_path: Path, dest: Path
) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """Unpack the media files of a .tar into `dest`; a bad member is reported, not fatal.

    Returns ([(member name, unpacked path)], [(member name, problem)]).
    """
    unpacked: list[tuple[str, Path]] = []
    problems: list[tuple[str, str]] = []
    try:
        archive = tarfile.open(tar_path)
    except (tarfile.TarError, OSError) as error:
        raise PermanentError(f"not a readable .tar archive: {error}", code="bad_archive") from error
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, EOFError, OSError) as error:
            raise PermanentError(f"archive is damaged: {error}", code="bad_archive") from error
        for member in members:
            problem = member_problem(member)
            if problem:
                problems.append((member.name, problem))
                continue
            if not member.isfile():
                continue
            try:
                # The "data" filter refuses anything our own check might have missed.
                archive.extract(member, dest, filter="data")
            except (tarfile.TarError, EOFError, OSError) as error:
                problems.append((member.name, f"could not be unpacked: {error}"))
                continue
            path = dest / member.name
            if path.suffix.lower() in MEDIA_EXTENSIONS:
                unpacked.append((member.name, path))
    return unpacked, problems


def ingest_archive_members(
    location: str, tar_path: Path, scratch: Path, ingest_member
) -> list[dict]:
    """Unpack `tar_path` into `scratch` and ingest each media member with `ingest_member`
    (which records its own job run); one bad member never stops the others."""
    unpacked, problems = unpack_archive(tar_path, scratch)
    lines = [
        {
            "status": "failed",
            "label": f"{location}/{name}",
            "message": problem,
            "code": "bad_member",
        }
        for name, problem in problems
    ]
    for name, path in unpacked:
        recording = recording_for_file(path, SourceKind.ARCHIVE, external_id=f"{location}/{name}")
        lines.append(ingest_member(recording))
    return lines
