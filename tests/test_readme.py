"""README.md's first steps and its curl example, run as written against served nodes.

The shell blocks of "First steps", then the block of "A request you can reproduce with curl", run
with bash, one command at a time, in a folder laid out like a checkout (``.venv`` and ``examples``).
Only the placeholders are filled in — ``<secret>`` and ``<the app's secret>`` with the secret
``tzsb app create --json`` printed — and port 8080 becomes a free port, since a test cannot count on
8080 being free. A ``tzsb serve`` runs in the background until the next one (or the end); the
``tzsb send`` commands ``tzsb demo`` printed run once its node is served.
"""

from __future__ import annotations

import re
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

import orjson

from tests.cli.test_demo import answer_of, run_shell, served
from tests.web.servers import free_port
from tzsb.protocol import RESULT_SUCCESS

REPO: Final = Path(__file__).resolve().parents[1]
README: Final = (REPO / "README.md").read_text(encoding="utf-8")
PLACEHOLDERS: Final = ("<secret>", "<the app's secret>")


def section(heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = README.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(rf"^#{{1,{len(level)}}} ", README[start:], flags=re.MULTILINE)
    return README[start : start + following.start()] if following else README[start:]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[str]:
    """The block's commands, a command's continuation lines (after a trailing backslash) kept with it."""
    found: list[str] = []
    for line in block.splitlines():
        if found and found[-1].endswith("\\"):
            found[-1] += "\n" + line
        elif line.strip():
            found.append(line)
    return found


def fill(command: str, secret: str | None, port: int | None) -> str:
    for placeholder in PLACEHOLDERS:
        if placeholder in command:
            assert secret is not None, f"{placeholder} before `tzsb app create --json` printed one: {command}"
            command = command.replace(placeholder, secret)
    if re.search(r"\b8080\b", command):
        assert port is not None, f"port 8080 before any `tzsb serve`: {command}"
        command = re.sub(r"\b8080\b", str(port), command)
    return command


def check_send(command: str, answer: dict[str, Any], work: Path) -> None:
    datalist = answer["datalist"]
    assert datalist["result"] == RESULT_SUCCESS, (command, datalist)
    if "--query" in command:
        assert datalist["busilist"], f"the query found nothing: {command}"
    elif match := re.search(r"--file (\S+)", command):
        sent = orjson.loads((work / match.group(1)).read_bytes())
        assert sum(datalist["counts"].values()) == len(sent), (command, datalist)


def test_first_steps_and_the_curl_example_run_as_written(tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    (work / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    first_steps = [command for block in shell_blocks(section("## First steps")) for command in commands(block)]
    (curl_block,) = shell_blocks(section("### A request you can reproduce with curl"))
    assert any(command.startswith("tzsb demo ") for command in first_steps), "the sandbox is in the first steps"
    assert sum("--file examples/" in command for command in first_steps) >= 2, "the first steps send the samples"

    secret: str | None = None
    port: int | None = None
    printed: list[str] = []  # the commands `tzsb demo` printed, run once its node is served
    ran = {"serve": 0, "send": 0, "printed": 0}
    with ExitStack() as servers:
        for written in first_steps:
            if written.startswith("tzsb serve "):
                servers.close()  # one node at a time, as in one terminal
                port = free_port()
                command = fill(written, secret, port)
                servers.enter_context(served(command, work, port, tmp_path / f"serve{ran['serve']}.log"))
                ran["serve"] += 1
                for pasted in printed:
                    check_send(pasted, answer_of(run_shell(fill(pasted, None, port), work)), work)
                    ran["printed"] += 1
                printed = []
                continue
            command = fill(written, secret, port)
            completed = run_shell(command, work)
            assert completed.returncode == 0, f"{command}\n{completed.stdout}\n{completed.stderr}"
            if command.startswith("tzsb demo "):
                printed = [line.strip() for line in completed.stdout.splitlines() if line.startswith("  tzsb send ")]
                assert printed, completed.stdout
            elif command.startswith("tzsb app create ") and "--json" in command:
                secret = orjson.loads(completed.stdout)["secret"]
            elif command.startswith("tzsb send "):
                check_send(command, answer_of(completed), work)
                ran["send"] += 1
        assert printed == [], "`tzsb demo` printed commands but no `tzsb serve` followed"
        curl = answer_of(run_shell(fill(curl_block, secret, port), work))
        assert curl["datalist"]["result"] == RESULT_SUCCESS, curl
        assert curl["datalist"]["busilist"], "the curl query found the devices sent in the first steps"
    assert ran == {"serve": 2, "send": 3, "printed": 5}
