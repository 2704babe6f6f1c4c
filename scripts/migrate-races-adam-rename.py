#!/usr/bin/env python3
"""Renames Adam in committed race records (bench/races/**/*.jsonl and
docs/img/**/*.jsonl) after the catalog's rename: the task's clipped Adam,
once `adam`, is `clipped_adam`, and `torch.optim.Adam`, once `adam_l2`, is
`adam`.

Only the `optimizer` and `entrant` fields change, rewritten in place as text
(every other byte, numbers included, stays as written). Records carry no
hash or fingerprint of their content, so nothing else needs updating.
A file that already names `clipped_adam` was migrated (or written after the
rename) and is left alone, so running the script twice changes nothing.

Usage: scripts/migrate-races-adam-rename.py [FILE.jsonl ...]
(default: every bench/races/**/*.jsonl and docs/img/**/*.jsonl)."""

import pathlib
import re
import sys

RENAMES = {"adam": "clipped_adam", "adam_l2": "adam"}

# "optimizer":"NAME" and "entrant":"NAME" or "entrant":"NAME(hp=...)".
FIELD = re.compile(r'"(optimizer|entrant)":"([A-Za-z0-9_]+)([("])')


def rename(match: re.Match) -> str:
    field, name, after = match.groups()
    return f'"{field}":"{RENAMES.get(name, name)}{after}'


def migrate(path: pathlib.Path) -> int:
    text = path.read_text()
    if '"optimizer":"clipped_adam"' in text:
        return 0
    new = FIELD.sub(rename, text)
    changed = sum(1 for a, b in zip(text.splitlines(), new.splitlines()) if a != b)
    if new != text:
        path.write_text(new)
    return changed


def main() -> None:
    root = pathlib.Path(__file__).resolve().parent.parent
    committed = sorted(root.glob("bench/races/**/*.jsonl")) + sorted(root.glob("docs/img/**/*.jsonl"))
    files = [pathlib.Path(a) for a in sys.argv[1:]] or committed
    for path in files:
        print(f"{path}: {migrate(path)} records renamed")


if __name__ == "__main__":
    main()
