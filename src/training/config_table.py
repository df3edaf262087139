"""The README's config tables, generated from the declared config classes so they cannot drift.

    PYTHONPATH=src python -m training.config_table          # print every table
    PYTHONPATH=src python -m training.config_table --write  # rewrite them in README.md

README.md holds each table between `<!-- config-table:NAME -->` and `<!-- /config-table -->`,
where NAME is `engine` (the engine's and the writers' keys) or a task's name (its own keys);
a test regenerates them and compares.
"""

import json
import re
import sys

from training.run_config import ENGINE_SECTIONS
from training.task import find_task
from utils.config_fields import REQUIRED, FieldSpec, all_specs
from utils.configs import REPO_ROOT
from utils.log.writers.registry import writer_config_sections

README = REPO_ROOT / "README.md"
BLOCK = re.compile(r"(<!-- config-table:(\w+) -->\n)(.*?)(<!-- /config-table -->)", re.S)


def table_classes(name: str) -> list[type]:
    """The classes a table lists: the engine's and the writers', or one task's own."""
    if name == "engine":
        return [*ENGINE_SECTIONS, *writer_config_sections()]
    return list(find_task(name).config_sections)


def markdown_table(specs: list[FieldSpec]) -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for spec in specs:
        default = "required" if spec.default is REQUIRED else f"`{json.dumps(spec.default)}`"
        allowed = f" ({spec.describe_range()})" if spec.describe_range() else ""
        rows.append(f"| `{spec.key}` | {spec.describe_type()}{allowed} | {default} | {spec.doc} |")
    return "\n".join(rows) + "\n"


def render(name: str) -> str:
    return markdown_table(list(all_specs(table_classes(name)).values()))


def rewrite(text: str) -> str:
    """`text` with every config-table block regenerated."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group(2)) + m.group(4), text)


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        README.write_text(rewrite(README.read_text()))
        return 0
    for match in BLOCK.finditer(README.read_text()):
        print(f"{match.group(2)}:\n{render(match.group(2))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
