"""The README's layout section names every folder of the checkout that holds code, and no folder that
is gone: the top-level folders, the apps under courseplatform/ and the engine's parts under grader/."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def layout_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout\n"):]
    return section[section.index("```\n") + 4:section.index("\n```", section.index("```\n") + 4)]


def named(block: str) -> dict[str, set[str]]:
    """Top-level folders and, per folder, the subfolders indented under it ("  name/")."""
    tree: dict[str, set[str]] = {}
    top = None
    for line in block.splitlines():
        if m := re.match(r"^([\w.-]+)/\s", line):
            top = m.group(1)
            tree[top] = set()
        elif (m := re.match(r"^  ([\w./, -]+?/)\s{2,}", line)) and top:
            tree[top] |= {n.strip().rstrip("/") for n in m.group(1).split(",")}
    return tree


LOCAL = {"var", "build", "dist", "node_modules", "__pycache__"}  # made by runs and builds (.gitignore)


def folders(path: Path) -> set[str]:
    return {p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")
            and p.name not in LOCAL and not p.name.endswith(".egg-info")}


def tracked_folders() -> dict[str, set[str]]:
    tree = {name: set() for name in folders(ROOT)}
    for top in ("courseplatform", "grader"):
        tree[top] = folders(ROOT / top)
    return tree


def test_the_layout_names_every_folder_and_only_those():
    readme, real = named(layout_block()), tracked_folders()
    assert set(readme) == set(real)
    for top in ("courseplatform", "grader"):
        assert readme[top] == real[top], top


def test_the_check_sees_a_missing_folder():
    block = layout_block().replace("\nscripts/", "\n#scripts/")
    assert "scripts" not in named(block) and "scripts" in tracked_folders()
