"""A validated manifest document together with the source it came from."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.diagnostics import Location
from reconciler.manifest.yaml_loader import SourceDocument
from reconciler.models.manifest import Manifest


@dataclass(frozen=True)
class Document:
    source: SourceDocument
    manifest: Manifest

    @property
    def kind(self) -> str:
        return self.manifest.KIND

    @property
    def name(self) -> str:
        return self.manifest.metadata.name

    def at(self, *path: str | int) -> Location:
        """Where ``path`` (manifest keys, e.g. ``"spec", "rules", 2``) is written."""
        return self.source.location(path)
