""".ci/run tests a fresh clone in a throwaway folder, with README's set-up
commands verbatim; it never deletes the developer's own .venv or ships a
stale build/ (the clone has neither)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", setup, re.S)]


def test_ci_runs_readme_commands_verbatim_in_a_fresh_clone():
    script = (ROOT / ".ci" / "run").read_text()
    commands = _readme_commands()
    assert len(commands) == 2
    for command in commands:
        assert command in script.splitlines()
    lines = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    clone = next(i for i, line in enumerate(lines) if line.startswith("git clone "))
    enter = next(i for i, line in enumerate(lines) if line.startswith("cd ") and "$work" in line)
    first_command = lines.index(commands[0])
    assert 'mktemp -d' in script and clone < enter < first_command
    # Nothing in the developer's checkout is removed: no rm before the cd
    # into the clone, and none of .venv or build/ at all.
    assert not any(line.startswith("rm ") for line in lines[:enter])
    assert not re.search(r"rm -[a-z]*\s+[^\n]*(\.venv|build)", script)
