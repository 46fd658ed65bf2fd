"""Write the commented reference of every role tunable into the sample inventories.

Each ansible/inventories/sample/<inventory>/group_vars/all/<role>.yml is generated from
ansible/roles/<role>/defaults/main.yml: the same comments and defaults, every setting commented
out, so an operator uncomments what they change. Regenerate after editing a role's defaults:

    python tests/ansible/sample_group_vars.py

test_sample_inventories.py fails when a committed file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
ROLES = ANSIBLE_DIR / "roles"
SAMPLES = ANSIBLE_DIR / "inventories" / "sample"


def reference_for(role: Path) -> str:
    """The commented copy of one role's defaults."""
    lines = [
        "---",
        f"# Generated from ansible/roles/{role.name}/defaults/main.yml by",
        "#   python tests/ansible/sample_group_vars.py",
        "# Do not edit: to change a setting, copy it uncommented into main.yml beside this file.",
    ]
    for line in (role / "defaults" / "main.yml").read_text().splitlines():
        if line.strip() == "---":
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            lines.append(line)
        else:
            lines.append(f"# {line}")
    return "\n".join(lines).rstrip() + "\n"


def expected_files() -> dict[Path, str]:
    """Every generated file and its content."""
    files: dict[Path, str] = {}
    for inventory in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        for role in sorted(p for p in ROLES.iterdir() if (p / "defaults" / "main.yml").exists()):
            files[inventory / "group_vars" / "all" / f"{role.name}.yml"] = reference_for(role)
    return files


def main() -> int:
    for path, content in expected_files().items():
        path.write_text(content)
        print(path.relative_to(ANSIBLE_DIR.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
