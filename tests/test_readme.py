"""The README stays true: its example runs and its two set-up commands are the ones CI runs."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_example_runs():
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "[[ 6.,  0.]," in result.stdout


def test_two_setup_commands_come_first_and_ci_uses_them():
    commands = re.findall(r"^    (main job|tests): (.+)$", README, re.M)
    assert [name for name, _ in commands] == ["main job", "tests"]
    assert "python -m gpugrad train" in commands[0][1]
    assert "pytest" in commands[1][1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "main job: *" in ci and "tests: *" in ci  # CI reads them from README.md
