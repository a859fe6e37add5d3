"""pyproject.toml's bounds, constraints.txt's pins and the installed packages agree.

A clean install (``make``) takes every version from constraints.txt; these tests notice when
the three drift apart: a dependency declared without an upper bound, a pin outside the bounds,
a package the install pulls in that nothing pins, or a suite running against other versions
than the pinned ones. Offline: they read the two files and the installed packages' metadata.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]

UPPER = {"<", "<=", "==", "~=", "==="}
LOWER = {">", ">=", "==", "~=", "==="}


def declared() -> dict[str, list[Requirement]]:
    """Every requirement pyproject.toml declares, by where: runtime, each extra, the build."""
    groups = {"dependencies": PROJECT["dependencies"]}
    groups |= {f"[{extra}]": reqs for extra, reqs in PROJECT["optional-dependencies"].items()}
    groups["build-system"] = PYPROJECT["build-system"]["requires"]
    return {group: [Requirement(text) for text in texts] for group, texts in groups.items()}


def installed_requirements() -> list[Requirement]:
    """What ``pip install -e '.[dev]'`` installs from: the runtime and dev requirements."""
    groups = declared()
    return groups["dependencies"] + groups["[dev]"]


def pins() -> dict[NormalizedName, Version]:
    found: dict[NormalizedName, Version] = {}
    for number, line in enumerate(
        (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1
    ):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, f"constraints.txt:{number}: {text} is not one pin"
        (specifier,) = specifiers
        assert specifier.operator == "==", f"constraints.txt:{number}: {text} is not a pin"
        assert not requirement.extras, f"constraints.txt:{number}: a pin takes no extras"
        assert requirement.marker is None, f"constraints.txt:{number}: a pin takes no marker"
        name = canonicalize_name(requirement.name)
        assert name not in found, f"constraints.txt:{number}: {name} pinned twice"
        found[name] = Version(specifier.version)
    return found


def _all_declared() -> list[Requirement]:
    return [requirement for group in declared().values() for requirement in group]


@pytest.mark.parametrize("requirement", _all_declared(), ids=str)
def test_every_declared_dependency_is_bounded_above_and_below(requirement: Requirement) -> None:
    operators = {specifier.operator for specifier in requirement.specifier}
    assert operators & UPPER, f"{requirement} has no upper bound"
    assert operators & LOWER, f"{requirement} has no lower bound"


def test_constraints_pin_each_dependency_within_the_bounds_pyproject_declares() -> None:
    pinned = pins()
    for group, requirements in declared().items():
        if group == "build-system":
            continue  # built in pip's isolated environment, not part of the installed tree
        for requirement in requirements:
            version = pinned.get(canonicalize_name(requirement.name))
            assert version is not None, f"{requirement} ({group}) is not in constraints.txt"
            assert requirement.specifier.contains(version, prereleases=True), (
                f"constraints.txt pins {requirement.name}=={version}, outside {requirement} "
                f"({group})"
            )


def _closure(requirements: list[Requirement]) -> set[NormalizedName]:
    """The installed distributions ``requirements`` need, following each one's own
    requirements (with the extras asked of it, and only those whose markers hold here)."""
    found: set[NormalizedName] = set()
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    todo = [(requirement.name, frozenset(requirement.extras)) for requirement in requirements]
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in seen:
            continue
        seen.add(key)
        found.add(key[0])
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return found


def test_the_dev_install_holds_every_extra_so_the_suite_tests_it() -> None:
    """The suite runs with ``[dev]`` only: each extra's packages must be in it (uvicorn for
    the emulator's real-socket tests, azure-identity for the azure extra's provider)."""
    groups = declared()
    dev = {canonicalize_name(requirement.name) for requirement in groups["[dev]"]}
    for group, requirements in groups.items():
        if group.startswith("[") and group != "[dev]":
            missing = [str(r) for r in requirements if canonicalize_name(r.name) not in dev]
            assert missing == [], f"{group} requirements missing from [dev]"


def test_uvicorn_is_the_emulator_extras_only() -> None:
    """``reconciler emulator serve`` alone needs it (reconciler/emulator/server.py)."""
    groups = declared()
    assert "uvicorn" not in {r.name for r in groups["dependencies"]}
    (extra,) = groups["[emulator]"]
    (dev,) = (r for r in groups["[dev]"] if r.name == "uvicorn")
    assert (extra.name, extra.specifier) == ("uvicorn", dev.specifier)


def test_constraints_pin_exactly_what_the_install_pulls_in() -> None:
    needed = _closure(installed_requirements())
    pinned = set(pins())
    assert sorted(needed - pinned) == [], "installed for the project but not pinned"
    assert sorted(pinned - needed) == [], "pinned but not needed by the project"


def test_installed_packages_are_the_pinned_versions() -> None:
    wrong = {}
    for name, version in pins().items():
        try:
            found = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            wrong[name] = "not installed"
            continue
        if found != version:
            wrong[name] = f"{found} installed, {version} pinned"
    assert wrong == {}, "reinstall with `make clean test` (constraints.txt)"


def test_the_build_requirement_allows_the_spdx_license_string() -> None:
    """``license = "MIT"`` (PEP 639) needs setuptools 77 or later to build."""
    assert PROJECT["license"] == "MIT"
    (setuptools,) = (r for r in declared()["build-system"] if r.name == "setuptools")
    assert not setuptools.specifier.contains("76.1.0")  # the last release before 77
