"""Shell recipes read from the documentation, so pages and tests cannot drift apart."""

from __future__ import annotations

from pathlib import Path


def grpcurl_recipes(page: Path, after: str) -> list[str]:
    """The grpcurl commands of the first ``sh`` block after ``after`` on ``page``.

    Comments are left out; continuation lines and here-documents stay with
    their command.
    """
    section = page.read_text().split(after, 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    recipes: list[str] = []
    for line in block.splitlines():
        if line.startswith("grpcurl "):
            recipes.append(line)
        elif line.strip() and not line.startswith("#"):
            recipes[-1] += "\n" + line
    return recipes
