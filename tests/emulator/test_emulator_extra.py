"""uvicorn comes with the ``emulator`` extra: only ``reconciler emulator serve`` needs it, and
without it that command says what to install (pyproject.toml, reconciler/emulator/server.py)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from reconciler.cli import main

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"


def test_serving_without_uvicorn_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` raises ImportError
    db = tmp_path / "org.db"
    code = main(["emulator", "serve", "--port", "0", "--db", str(db)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == (
        "error: serving the emulator needs uvicorn, which is not installed: "
        "pip install 'reconciler[emulator]'\n"
    )
    assert not db.exists()  # refused before anything was opened


def _imports(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found: set[str] = set()
    if "uvicorn" not in text:  # parsing every module would take half a second
        return found
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_emulator_server_imports_uvicorn() -> None:
    """So every other command, the embedded local target included, runs without the extra."""
    importing = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "uvicorn" in _imports(path)
    )
    assert importing == ["emulator/server.py"]
