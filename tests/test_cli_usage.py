"""01_initialize.py and 02_train.py: a usage error is one line naming the fix; --help shows the usage."""

import pytest
from conftest import run_script


@pytest.mark.parametrize(
    ("script", "args", "fragment"),
    [
        ("01_initialize.py", ["--bogus"], "unrecognized arguments: --bogus"),
        ("01_initialize.py", ["-e"], "argument -e/--experiment: expected one argument"),
        ("02_train.py", ["--resume", "--restart"], "argument --restart: not allowed with argument --resume"),
        ("02_train.py", ["-e", "x", "-r", "y", "extra"], "unrecognized arguments: extra"),
    ],
)
def test_a_usage_error_is_one_line_with_exit_2(script: str, args: list[str], fragment: str, experiments_root) -> None:
    result = run_script(script, *args, timeout=60)
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [f"{script}: error: {fragment} (see {script} --help)"]
    assert not any(experiments_root.iterdir())


@pytest.mark.parametrize("script", ["01_initialize.py", "02_train.py"])
def test_help_still_shows_the_usage(script: str) -> None:
    result = run_script(script, "--help", timeout=60)
    assert result.returncode == 0 and result.stdout.startswith(f"usage: {script} [-h]")
