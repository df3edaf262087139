"""A tagged git copy of this repository's HEAD as a copier template, and projects generated from it.

The template is HEAD's committed state (`git clone`): uncommitted edits do not reach it.
"""

import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, subprocess_env

COPIER = [sys.executable, "-m", "copier"]
VERSION = "v1.0.0"
EXAMPLES = ("digits", "shapes")


def git_env(home: Path) -> dict[str, str]:
    """The test's environment with a git identity of its own and no user or system git config."""
    config = home / "gitconfig"
    if not config.exists():
        config.write_text("[user]\n\tname = Template Test\n\temail = test@example.invalid\n"
                          "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    return subprocess_env(GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1")


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `command` bounded in time; a non-zero exit fails with its output."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def make_template(folder: Path, env: dict[str, str]) -> Path:
    """A clone of HEAD tagged VERSION: what a user's `copier copy --vcs-ref VERSION URL` reads.

    `--no-local` packs the objects, as a clone from a server does. A local clone copies the loose
    objects one file each, and copier renders every path of the template, `.git`'s included, before
    it excludes any: with this repository's 1,600 loose objects a `copier copy` took 17 s, not 3 s."""
    template = folder / "template"
    run(["git", "clone", "--quiet", "--no-local", str(REPO_ROOT), str(template)], folder, env)
    run(["git", "tag", VERSION], template, env)
    return template


def generate(template: Path, project: Path, env: dict[str, str], *, keep_digits: bool, keep_shapes: bool,
             ref: str = VERSION) -> Path:
    """`copier copy --defaults` with the two booleans answered, named 'demo project'."""
    data = [f"project_name=demo project", f"keep_digits={str(keep_digits).lower()}",
            f"keep_shapes={str(keep_shapes).lower()}"]
    run([*COPIER, "copy", "--quiet", "--defaults", *(a for d in data for a in ("--data", d)), "--vcs-ref", ref,
         str(template), str(project)], project.parent, env)
    return project


def commit_all(folder: Path, env: dict[str, str], message: str) -> None:
    run(["git", "add", "-A"], folder, env)
    run(["git", "commit", "--quiet", "-m", message], folder, env)


def reference_pattern(example: str) -> re.Pattern:
    """How a file names an example task: its module, file, config, class names, task name or table."""
    title = example.capitalize()
    return re.compile(rf"tasks[./]{example}\b|\b{example}\.(py|json)\b|[\"']{example}[\"']|TASK={example}\b"
                      rf"|-c {example}\b|\b{title}[A-Z]\w*|config-table:{example}\b|\b{example}/")


def files_naming(project: Path, example: str) -> list[str]:
    """The project's text files (README.md aside: its how-tos use the examples) naming `example`."""
    pattern = reference_pattern(example)
    found = []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if not path.is_file() or relative.startswith(".git/") or relative == "README.md":
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if pattern.search(text) or example in relative:
            found.append(relative)
    return found


def readme_block(first_command: str) -> list[str]:
    """The README's bash block that starts with `first_command`, one command per line."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO_ROOT / "README.md").read_text(), flags=re.S)
    return next(block.strip().splitlines() for block in blocks if block.startswith(first_command))


def conflicts_left(project: Path) -> list[str]:
    """Files holding a `.rej` reject or a conflict marker (what `copier update` leaves on a conflict)."""
    left = []
    for path in project.rglob("*"):
        if ".git" in path.relative_to(project).parts or not path.is_file():
            continue
        if path.suffix == ".rej" or b"\n<<<<<<< " in b"\n" + path.read_bytes():
            left.append(path.relative_to(project).as_posix())
    return left
