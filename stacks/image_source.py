"""The release tag of the services' image: the version and a hash of what BuildKit is sent.

The repository's tags are immutable, so a tag must name one content: the tag changes
exactly when a file of the build context (the Dockerfile, `.dockerignore` and whatever it
lets through) changes, and stays when only files Docker never sees change (tests, docs),
so those neither rebuild the image nor roll the pods. Docker's own `.dockerignore` rules
decide which files count (`docker.utils.build.exclude_paths`, from the Docker SDK): a
pattern matched differently here than by BuildKit would let a changed context reuse an
existing tag, which ECR refuses.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from pathlib import Path

from docker.utils.build import exclude_paths

__all__ = ["DOCKERFILE", "build_context_digest", "release_tag"]

DOCKERFILE = "Dockerfile"
_TAG_HASH_LENGTH = 12


def build_context_digest(context: Path, dockerfile: str = DOCKERFILE) -> str:
    """SHA-256 over the path and bytes of every file BuildKit would be sent from `context`."""
    ignore = context / ".dockerignore"
    patterns = (
        [
            line.strip()
            for line in ignore.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        if ignore.is_file()
        else []
    )
    digest = hashlib.sha256()
    for relative in sorted(exclude_paths(str(context), patterns, dockerfile=dockerfile)):
        path = context / relative
        if path.is_file():
            digest.update(relative.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def release_tag(context: Path, package: str = "eduscale") -> str:
    """`v<package version>-<12 hex of the context digest>`, e.g. `v0.1.0-3f2a9c0d1e7b`."""
    return f"v{version(package)}-{build_context_digest(context)[:_TAG_HASH_LENGTH]}"
