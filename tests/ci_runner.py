"""Run the example CI files' steps for real, on this machine, against a local target.

A small, strict runner for the subset of GitHub Actions and Azure Pipelines the examples use:
every shell step runs in bash as the platform runs it (GitHub: ``bash -eo pipefail``; Azure:
plain ``bash``), with the environment the platform would give it (workflow, job and step
``env``; expressions and macros resolved from the values a test supplies). Steps that need the
platform itself (checkout, setup-python, sign-in, artifacts, installing the package) are
emulated by name, and any step or expression the runner does not know fails the test, so the
examples cannot grow a step that no test runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
MACRO = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.]*)\)")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


@dataclass
class Result:
    ran: list[str] = field(default_factory=list)
    """Ids of the steps that ran (emulated ones included), in order."""
    failed: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    """Each step's stdout and stderr, by id."""
    codes: dict[str, int] = field(default_factory=dict)


@dataclass
class Machine:
    """What the platform provides: a workspace, the environment, artifacts between runs."""

    workspace: Path
    base_env: dict[str, str]
    artifacts: dict[str, Path] = field(default_factory=dict)

    def bash(self, script: str, env: Mapping[str, str], errexit: bool) -> tuple[int, str]:
        flags = ["-eo", "pipefail"] if errexit else []
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", *flags, "-c", script],
            cwd=self.workspace,
            env={**self.base_env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode, done.stdout + done.stderr


def base_environment(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """A clean environment: this venv's ``reconciler`` first on PATH, nothing inherited that
    could change what the commands do."""
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        **extra,
    }


# --- GitHub Actions -----------------------------------------------------------------------------


@dataclass
class GitHubRun:
    event: str
    """``pull_request`` or ``push``."""
    expressions: Mapping[str, str]
    """``${{ … }}`` → value; anything else used in an env value fails the test."""


def _github_value(text: str, run: GitHubRun) -> str:
    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        assert key in run.expressions, f"unknown expression ${{{{ {key} }}}}"
        return run.expressions[key]

    return EXPRESSION.sub(one, str(text))


_CONDITION = re.compile(r"^(?P<left>[\w.-]+) == '(?P<right>[^']*)'$")


def _github_if(condition: str | None, run: GitHubRun, outputs: Mapping[str, str]) -> bool:
    if condition is None:
        return True
    match = _CONDITION.match(condition.strip())
    assert match, f"the runner cannot evaluate if: {condition}"
    left = match["left"]
    if left == "github.event_name":
        value = run.event
    else:
        step = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", left)
        assert step, f"the runner cannot evaluate {left}"
        value = outputs.get(f"{step[1]}.{step[2]}", "")
    return value == match["right"]


GitHubEmulation = Callable[[dict[str, Any], Machine, Result], None]


def run_github_job(
    workflow: dict[str, Any],
    job_name: str,
    run: GitHubRun,
    machine: Machine,
    emulate: Mapping[str, GitHubEmulation],
) -> Result:
    """Run one job of ``workflow`` step by step; stop at the first failing step."""
    job = workflow["jobs"][job_name]
    result = Result()
    if not _github_if(job.get("if"), run, {}):
        return result
    outputs: dict[str, str] = {}
    output_file = machine.workspace.parent / f"{job_name}-github-output"
    summary = machine.workspace.parent / f"{job_name}-step-summary.md"
    for index, step in enumerate(job["steps"]):
        step_id = step.get("id") or step.get("uses", f"step-{index}").split("@")[0]
        if not _github_if(step.get("if"), run, outputs):
            continue
        result.ran.append(step_id)
        if "uses" in step:
            action = step["uses"].split("@")[0]
            assert action in emulate, f"no emulation for the action {action}"
            emulate[action](step, machine, result)
            continue
        if step_id in emulate:
            emulate[step_id](step, machine, result)
            continue
        env = {
            **{k: _github_value(v, run) for k, v in (workflow.get("env") or {}).items()},
            **{k: _github_value(v, run) for k, v in (job.get("env") or {}).items()},
            **{k: _github_value(v, run) for k, v in (step.get("env") or {}).items()},
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        assert "${{" not in step["run"], f"step {step_id}: expressions belong in env:"
        output_file.write_text("")
        code, text = machine.bash(step["run"], env, errexit=True)
        result.outputs[step_id] = text
        result.codes[step_id] = code
        for line in output_file.read_text().splitlines():
            name, _, value = line.partition("=")
            outputs[f"{step_id}.{name}"] = value
        if code != 0:
            result.failed = step_id
            return result
    return result


# --- Azure Pipelines ----------------------------------------------------------------------------


def _ado_env_name(name: str) -> str:
    return name.replace(".", "_").upper()


def ado_condition(text: str, variables: Mapping[str, str], succeeded: bool = True) -> bool:
    """The expressions the pipeline uses: and/or/not/eq/ne/succeeded over variables['X']."""
    tokens = re.findall(r"variables\['[^']+'\]|'[^']*'|\w+|[(),]", text)
    position = 0

    def value() -> Any:
        nonlocal position
        token = tokens[position]
        position += 1
        if token.startswith("variables["):
            return variables.get(token[len("variables['") : -2], "")
        if token.startswith("'"):
            return token[1:-1]
        assert tokens[position] == "(", f"cannot read the condition {text!r}"
        position += 1
        args: list[Any] = []
        while tokens[position] != ")":
            args.append(value())
            if tokens[position] == ",":
                position += 1
        position += 1
        functions: dict[str, Callable[..., Any]] = {
            "and": lambda *a: all(a),
            "or": lambda *a: any(a),
            "not": lambda a: not a,
            "eq": lambda a, b: str(a).lower() == str(b).lower(),
            "ne": lambda a, b: str(a).lower() != str(b).lower(),
            "succeeded": lambda: succeeded,
        }
        assert token in functions, f"unknown function {token} in {text!r}"
        return functions[token](*args)

    outcome = bool(value())
    assert position == len(tokens), f"cannot read the condition {text!r}"
    return outcome


@dataclass
class AdoRun:
    variables: Mapping[str, str]
    """Predefined variables (``Build.Reason``…) and the variable group's values."""
    secrets: frozenset[str] = frozenset()
    """Variables that are secret: never in a script's environment unless mapped in env:."""


def run_ado_stage(
    pipeline: dict[str, Any],
    stage_name: str,
    run: AdoRun,
    machine: Machine,
    emulate: Mapping[str, Callable[[dict[str, Any], Machine, Result], None]],
) -> Result:
    stage = next(s for s in pipeline["stages"] if s["stage"] == stage_name)
    declared = {v["name"]: str(v["value"]) for v in pipeline["variables"] if "name" in v}
    variables = {**run.variables, **declared}
    result = Result()
    if "condition" in stage and not ado_condition(stage["condition"], variables):
        return result
    visible = {
        _ado_env_name(name): value for name, value in variables.items() if name not in run.secrets
    }

    def macros(text: str) -> str:
        return MACRO.sub(lambda m: variables.get(m.group(1), m.group(0)), str(text))

    for job in stage["jobs"]:
        steps = job.get("steps") or job["strategy"]["runOnce"]["deploy"]["steps"]
        for index, step in enumerate(steps):
            kind = step.get("task") or next(
                (k for k in ("checkout", "publish", "download") if k in step), None
            )
            name = step.get("name") or f"{kind or 'script'}-{index}"
            if "condition" in step and not ado_condition(step["condition"], variables):
                continue
            result.ran.append(name)
            emulation = emulate.get(name) or emulate.get(kind or "")
            if emulation is not None:
                emulation(step, machine, result)
                continue
            if "script" in step:
                script = step["script"]
            else:
                assert step.get("task") == "AzureCLI@2", f"no emulation for step {step}"
                inputs = step["inputs"]
                assert inputs["scriptType"] == "bash"
                assert inputs["scriptLocation"] == "inlineScript"
                script = inputs["inlineScript"]
            env = {
                **visible,
                **{k: macros(v) for k, v in (step.get("env") or {}).items()},
            }
            code, text = machine.bash(macros(script), env, errexit=False)
            result.outputs[name] = text
            result.codes[name] = code
            if code != 0:
                result.failed = name
                return result
    return result


def copy_artifact(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
