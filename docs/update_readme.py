"""Regenerate the generated blocks of README.md (the model table) from the registry.

    python docs/update_readme.py
"""

from __future__ import annotations

import re
from pathlib import Path

from colorizer_lib.registry import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name}:start/end --> block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


if __name__ == "__main__":
    README.write_text(replace_block(README.read_text(), "models", markdown_table()))
    print("README.md model table updated")
