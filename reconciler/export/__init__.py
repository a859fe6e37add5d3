"""``reconciler export``: adopt what a target holds as manifests (see ``exporter``)."""
