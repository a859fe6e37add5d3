"""The shipped examples as a test project: marker secrets, a service account key, a tmp copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Marker secrets: if any of them shows up in any output, a secret leaked.
SECRETS = {
    "FB_APP_SECRET": "MARKER-app-secret-7f3a",
    "FB_PAGE_TOKEN_SUPPORT": "MARKER-support-token-91c2",
    "FB_PAGE_TOKEN_DEALS": "MARKER-deals-token-44d0",
    "GBM_CLIENT_TOKEN": "MARKER-gbm-token-0b7e",
}
KEY_FILE = '{"type": "service_account", "private_key": "MARKER-private-key-5e5e"}\n'
MARKERS = [*SECRETS.values(), "MARKER-private-key-5e5e"]


def copy_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of examples/ with its service account key, the marker secrets in the
    environment, and the working directory in tmp (the dev target is relative)."""
    copy = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", copy, ignore=shutil.ignore_patterns("*.json"))
    (copy / "gbm-service-account.json").write_text(KEY_FILE)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NO_COLOR", raising=False)
    for name in (
        "RECONCILER_TARGET",
        "RECONCILER_PLAN_KEY",
        "RECONCILER_ALLOWED_HOSTS",
        "RECONCILER_SECRET_DIRS",
        "DATAVERSE_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)  # the machine's own settings stay out
    monkeypatch.chdir(tmp_path)
    return copy
