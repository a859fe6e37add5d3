"""Manifests ↔ Dataverse rows, both ways, in manifest terms."""
