"""The README's and docs/'s shell sessions, run against the local target, so a doc cannot
drift from the product.

Each doc runs in a fresh copy of the repository's examples (``repo/examples``, the working
directory ``repo``, the demo secrets of ``make run`` set), its blocks in order, each command
in-process through ``reconciler.cli.main``. A command exits with the code the doc implies: the
one ``echo $?`` shows, else non-zero when its output shows an ``error:`` line (exactly the
block's ``exit`` directive when it has one), else 0. Blocks that cannot run here (a real org, a
served emulator, a prompt to answer) carry a visible ``<!-- doc-test: skip (why) -->`` and are
counted below. The grammar of blocks and directives: ``tests/doc_commands.py``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from doc_commands import Block, Command, parse, unrun_commands, words
from examples_project import ROOT, copy_examples

from reconciler.cli import main

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GENERATED = {"docs/manifests.md"}  # `make docs` writes it from the models; it shows no sessions
DEMO_SECRETS = {
    "FB_APP_SECRET": "demo-app-secret",
    "FB_PAGE_TOKEN_SUPPORT": "demo-support-page-token",
    "FB_PAGE_TOKEN_DEALS": "demo-deals-page-token",
    "GBM_CLIENT_TOKEN": "demo-gbm-client-token",
}
KEY_FILE = '{"type": "service_account", "project_id": "demo"}\n'
# Blocks skipped on purpose, each with a `doc-test: skip` marker giving the reason. Change the
# number only with a marker: a new block runs by default.
SKIPPED = 26
# Docs showing commands the product does not have yet (doc path → why): their test is an
# expected failure until the commands land; remove the entry then.
PENDING: dict[str, str] = {}


def blocks_of(doc: Path) -> list[Block]:
    return parse(doc, ROOT)


def doc_id(doc: Path) -> str:
    return doc.relative_to(ROOT).as_posix()


def cases() -> list[object]:
    params = []
    for doc in DOCS:
        name = doc_id(doc)
        if name in GENERATED:
            continue
        marks = [pytest.mark.xfail(strict=False, reason=PENDING[name])] if name in PENDING else []
        params.append(pytest.param(doc, id=name, marks=marks))
    return params


class Session:
    """A small shell: the commands the docs use, run in-process."""

    def __init__(
        self, repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.repo = repo
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def path(self, name: str) -> Path:
        return Path(os.path.expanduser(name))

    def run(self, block: Block, text: str) -> tuple[int, str, str]:
        code, out, err = 0, "", ""
        for argv in words(text):
            code, out, err = self.simple(block, argv)
            if code:
                break
        return code, out, err

    def simple(self, block: Block, argv: list[str]) -> tuple[int, str, str]:
        where = f"{block.where}: {shlex.join(argv)}"
        env: dict[str, str] = {}
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
            key, _, value = argv.pop(0).partition("=")
            env[key] = value
        out_file = None
        if ">" in argv:
            at = argv.index(">")
            out_file, argv = argv[at + 1], argv[:at]
        name, args = argv[0], argv[1:]
        if name == "reconciler":
            with pytest.MonkeyPatch.context() as scoped:
                for key, value in env.items():
                    scoped.setenv(key, value)
                self.capsys.readouterr()
                try:
                    code = main(args)
                except SystemExit as exc:  # --version, --help and argparse's usage errors
                    code = exc.code if isinstance(exc.code, int) else 1
                out, err = self.capsys.readouterr()
            if out_file is not None:
                self.path(out_file).write_text(out)
            return code, out, err
        assert not env, f"{where}: variables before a command other than reconciler"
        if name == "cd":
            self.monkeypatch.chdir(self.path(args[0]))
        elif name == "export":
            for assignment in args:
                key, _, value = assignment.partition("=")
                self.monkeypatch.setenv(key, value)
        elif name == "unset":
            for key in args:
                self.monkeypatch.delenv(key, raising=False)
        elif name == "mkdir":
            for target in args:
                if target != "-p":
                    self.path(target).mkdir(parents=True, exist_ok=True)
        elif name == "mv":
            *sources, target = args
            for source in sources:
                shutil.move(self.path(source), self.path(target))
        elif name == "cp" and args[:1] == ["-r"]:
            shutil.copytree(self.path(args[1]), self.path(args[2]))
        elif name == "rm":
            for target in (arg for arg in args if not arg.startswith("-")):
                path = self.path(target)
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        elif name in ("python", "python3") and args[:1] == ["-c"]:
            self.capsys.readouterr()
            exec(compile(args[1], where, "exec"), {"__name__": "__main__"})  # a doc's one-liner
            out, err = self.capsys.readouterr()
            return 0, out, err
        elif name == "printf" and out_file is not None:
            self.path(out_file).write_text(args[0].encode().decode("unicode_escape"))
        elif name == "sed" and args[:1] == ["-i"]:
            match = re.fullmatch(r"s/((?:[^/\\]|\\.)*)/((?:[^/\\]|\\.)*)/(g?)", args[1])
            assert match, f"{where}: only sed -i 's/OLD/NEW/' runs here"
            old, new, every = match.groups()
            for target in args[2:]:
                path = self.path(target)
                lines = path.read_text().splitlines(keepends=True)  # sed works line by line
                path.write_text(
                    "".join(re.sub(old, new, line, count=0 if every else 1) for line in lines)
                )
        else:
            pytest.fail(
                f"{where}: `{name}` does not run in tests/test_docs_commands.py; "
                "mark the block <!-- doc-test: skip (why) --> or teach the runner"
            )
        return 0, "", ""


def expected_code(block: Block, command: Command) -> int | None:
    """The exit code the doc implies; None: any non-zero code."""
    if command.exit_code is not None:
        return command.exit_code
    if command.shows_error:
        stated = block.directive("exit")
        return int(stated) if stated else None
    return 0


def fresh_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``repo/examples`` (with its service account key), ``repo`` the working directory and a
    repository root (``.git``), the demo secrets set, the machine's settings left out."""
    repo = tmp_path / "repo"
    examples = copy_examples(repo, monkeypatch)
    (examples / "gbm-service-account.json").write_text(KEY_FILE)
    shutil.rmtree(examples / ".reconciler", ignore_errors=True)  # a `make run` database
    (repo / ".git").mkdir()
    for key, value in DEMO_SECRETS.items():
        monkeypatch.setenv(key, value)
    for key in ("FORCE_COLOR", "NO_COLOR", "RECONCILER_AUTH", "AZURE_TENANT_ID", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.chdir(repo)
    return repo


@pytest.mark.parametrize("doc", cases())
def test_doc_sessions_run(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    session = Session(fresh_project(tmp_path, monkeypatch), monkeypatch, capsys)
    failures: list[str] = []
    for block in blocks_of(doc):
        if block.directive("skip") is not None:
            continue
        for key, value in block.directives:
            if key in ("write", "append"):
                path = session.path(value)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("w" if key == "write" else "a") as file:
                    file.write(block.text)
            elif key == "run":
                code, out, err = session.run(block, value)
                assert code == 0, f"{block.where}: setup `{value}` exited {code}\n{out}{err}"
        for command in block.commands:
            code, out, err = session.run(block, command.text)
            expected = expected_code(block, command)
            if (code != expected) if expected is not None else code == 0:
                wanted = "non-zero" if expected is None else expected
                failures.append(
                    f"{doc_id(doc)}:{command.line}: `{command.text}` exited {code}, the doc "
                    f"implies {wanted}\n--- stdout\n{out[-2000:]}--- stderr\n{err[-2000:]}"
                )
                continue
            shown = [line for line in command.output if line.startswith("Plan: ")]
            for line in shown:
                if line not in out.splitlines():
                    failures.append(
                        f"{doc_id(doc)}:{command.line}: `{command.text}` printed no `{line}`\n"
                        + out[-2000:]
                    )
    assert not failures, "\n\n".join(failures)


def test_every_command_block_runs_or_says_why() -> None:
    """An untagged block that reads like commands would go unrun; a skip says why; the count
    of skips changes only on purpose."""
    skipped, unrun = 0, []
    for doc in DOCS:
        if doc_id(doc) in GENERATED:
            continue
        for block in blocks_of(doc):
            reason = block.directive("skip")
            if reason is not None:
                assert reason.strip("() "), f"{block.where}: a skip says why"
                skipped += 1
            unrun += [f"{block.where}: {line}" for line in unrun_commands(block)]
    assert not unrun, "tag these blocks ```sh (to run) or ```text (a synopsis):\n" + "\n".join(
        unrun
    )
    assert skipped == SKIPPED, f"{skipped} blocks skipped, {SKIPPED} expected"


def test_parser_reads_prompts_continuations_and_exit_codes(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- doc-test: exit 3 -->\n"
        "```console\n"
        "$ FOO=1 reconciler plan \\\n"
        "    --env dev\n"
        "error: refused\n"
        "$ reconciler plan --detailed-exitcode\n"
        "...\n"
        "$ echo $?\n"
        "2\n"
        "```\n"
        "\n"
        "```sh\n"
        "cd examples && reconciler validate   # a comment\n"
        "```\n"
        "```\n"
        "reconciler validate [PATHS]\n"
        "```\n"
    )
    first, second, third = parse(doc, tmp_path)
    assert [c.text for c in first.commands] == [
        "FOO=1 reconciler plan --env dev",
        "reconciler plan --detailed-exitcode",
    ]
    assert [expected_code(first, c) for c in first.commands] == [3, 2]
    assert words(second.commands[0].text) == [["cd", "examples"], ["reconciler", "validate"]]
    assert unrun_commands(third) == ["reconciler validate [PATHS]"]
