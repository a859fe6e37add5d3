"""Run the example CI files' steps for real, on this machine, against a local target.

A small, strict runner for the subset of GitHub Actions and Azure Pipelines the examples use:
every shell step runs in bash as the platform runs it (GitHub: ``bash -eo pipefail``; Azure:
plain ``bash``), with the environment the platform would give it (workflow, job and step
``env``; expressions and macros resolved from the values a test supplies). Steps that need the
platform itself (checkout, setup-python, sign-in, artifacts, installing the package, the
pull-request comment) are emulated by name, and any step or expression the runner does not know
fails the test, so the examples cannot grow a step that no test runs. As on the platforms, a
failed step skips the steps after it unless their condition asks for them (GitHub's
``always()``, Azure's ``succeededOrFailed()``), and those see the job's status.
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
    """``${{ … }}`` → value (``steps.*`` come from the run itself); anything else used fails."""


@dataclass
class _Steps:
    """The ``steps`` context and the job's status, as the job goes."""

    outputs: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    failed: bool = False


def _github_lookup(name: str, run: GitHubRun, steps: _Steps) -> str:
    if name == "github.event_name":
        return run.event
    output = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", name)
    if output:
        return steps.outputs.get(f"{output[1]}.{output[2]}", "")
    outcome = re.fullmatch(r"steps\.([\w-]+)\.(outcome|conclusion)", name)
    if outcome:
        return steps.outcomes.get(outcome[1], "")
    assert name in run.expressions, f"unknown expression ${{{{ {name} }}}}"
    return run.expressions[name]


def _github_value(text: str, run: GitHubRun, steps: _Steps) -> str:
    return EXPRESSION.sub(lambda m: _github_lookup(m.group(1), run, steps), str(text))


_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|!|\(|\)|'[^']*'|[A-Za-z_][\w.-]*\(\)|[A-Za-z_][\w.-]*)")
_STATUS = re.compile(r"\b(always|success|failure|cancelled)\(\)")


def _github_if(condition: str | None, run: GitHubRun, steps: _Steps) -> bool:
    """``if:`` with ``&&``, ``||``, ``!``, ``==``, ``!=``, parentheses, string literals, the
    status functions and the contexts above. Without a status function GitHub reads it as
    ``success() && (…)``."""
    if condition is None:
        return not steps.failed
    text = condition.strip()
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match, f"the runner cannot evaluate if: {condition}"
        tokens.append(match.group(1))
        position = match.end()
    at = 0

    def peek() -> str | None:
        return tokens[at] if at < len(tokens) else None

    def take() -> str:
        nonlocal at
        at += 1
        return tokens[at - 1]

    def primary() -> Any:
        token = take()
        if token == "!":
            return not primary()
        if token == "(":
            value = either()
            assert take() == ")", f"the runner cannot evaluate if: {condition}"
            return value
        if token.startswith("'"):
            return token[1:-1]
        functions = {
            "always()": True,
            "success()": not steps.failed,
            "failure()": steps.failed,
            "cancelled()": False,
        }
        if token in functions:
            return functions[token]
        assert not token.endswith("()"), f"the runner knows no function {token}"
        return _github_lookup(token, run, steps)

    def comparison() -> Any:
        left = primary()
        while peek() in ("==", "!="):
            operator, right = take(), primary()
            # GitHub compares strings case-insensitively.
            same = str(left).lower() == str(right).lower()
            left = same if operator == "==" else not same
        return left

    def both() -> Any:
        value = comparison()
        while peek() == "&&":
            take()
            right = comparison()
            value = value and right
        return value

    def either() -> Any:
        value = both()
        while peek() == "||":
            take()
            right = both()
            value = value or right
        return value

    outcome = either()
    assert at == len(tokens), f"the runner cannot evaluate if: {condition}"
    if not _STATUS.search(text):
        return not steps.failed and bool(outcome)
    return bool(outcome)


GitHubEmulation = Callable[[dict[str, Any], Machine, Result], None]
"""Called with the step, its ``env`` resolved as the platform would give it to the action."""


def run_github_job(
    workflow: dict[str, Any],
    job_name: str,
    run: GitHubRun,
    machine: Machine,
    emulate: Mapping[str, GitHubEmulation],
) -> Result:
    """Run one job of ``workflow`` step by step. After a failing step only the steps whose
    ``if:`` asks for it (``always()``, ``failure()``) run; ``result.failed`` is the first."""
    job = workflow["jobs"][job_name]
    result = Result()
    steps = _Steps()
    if not _github_if(job.get("if"), run, steps):
        return result
    output_file = machine.workspace.parent / f"{job_name}-github-output"
    summary = machine.workspace.parent / f"{job_name}-step-summary.md"
    for index, step in enumerate(job["steps"]):
        step_id = step.get("id") or step.get("uses", f"step-{index}").split("@")[0]
        if not _github_if(step.get("if"), run, steps):
            if "id" in step:
                steps.outcomes[step["id"]] = "skipped"
            continue
        result.ran.append(step_id)
        env = {
            **{k: _github_value(v, run, steps) for k, v in (workflow.get("env") or {}).items()},
            **{k: _github_value(v, run, steps) for k, v in (job.get("env") or {}).items()},
            **{k: _github_value(v, run, steps) for k, v in (step.get("env") or {}).items()},
        }
        if "uses" in step or step_id in emulate:
            key = step["uses"].split("@")[0] if "uses" in step else step_id
            assert key in emulate, f"no emulation for the action {key}"
            emulate[key]({**step, "env": env}, machine, result)
            code = result.codes.get(step_id, 0)
        else:
            assert "${{" not in step["run"], f"step {step_id}: expressions belong in env:"
            output_file.write_text("")
            env |= {"GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary)}
            code, text = machine.bash(step["run"], env, errexit=True)
            result.outputs[step_id] = text
            result.codes[step_id] = code
            for line in output_file.read_text().splitlines():
                name, _, value = line.partition("=")
                steps.outputs[f"{step_id}.{name}"] = value
        if "id" in step:
            steps.outcomes[step["id"]] = "success" if code == 0 else "failure"
        if code != 0:
            result.failed = result.failed or step_id
            steps.failed = True
    return result


# --- Azure Pipelines ----------------------------------------------------------------------------


def _ado_env_name(name: str) -> str:
    return name.replace(".", "_").upper()


def ado_condition(text: str, variables: Mapping[str, str], succeeded: bool = True) -> bool:
    """The expressions the pipeline uses: and/or/not/eq/ne and the job status functions
    (succeeded, failed, succeededOrFailed, always;
    https://learn.microsoft.com/azure/devops/pipelines/process/conditions) over
    variables['X']; ``succeeded`` is the status of the job so far."""
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
            "failed": lambda: not succeeded,
            "succeededOrFailed": lambda: True,  # no run here is cancelled
            "always": lambda: True,
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
        succeeded = True
        for index, step in enumerate(steps):
            kind = step.get("task") or next(
                (k for k in ("checkout", "publish", "download") if k in step), None
            )
            name = step.get("name") or f"{kind or 'script'}-{index}"
            # A step without a condition runs only while the job has not failed.
            condition = step.get("condition", "succeeded()")
            if not ado_condition(condition, variables, succeeded):
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
                "AGENT_JOBSTATUS": "Succeeded" if succeeded else "Failed",
                **{k: macros(v) for k, v in (step.get("env") or {}).items()},
            }
            code, text = machine.bash(macros(script), env, errexit=False)
            result.outputs[name] = text
            result.codes[name] = code
            if code != 0:
                result.failed = result.failed or name
                succeeded = False
    return result


def copy_artifact(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
