"""Print an ImageFolder export as a tree: each split, its class folders with their file counts,
and one example file. What `make demo` shows at the end.

    .venv/bin/python scripts/show_tree.py out/mednist/imagefolder
"""

import os
import sys


def show(root: str) -> None:
    print(f"{root}/")
    for split in sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("_")):
        classes = sorted(os.listdir(os.path.join(root, split)))
        print(f"  {split}/")
        for label in classes:
            files = sorted(os.listdir(os.path.join(root, split, label)))
            example = f"  e.g. {files[0]}" if files else ""
            print(f"    {label}/  {len(files)} files{example}")
    for name in sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n))):
        print(f"  {name}")


if __name__ == "__main__":
    show(sys.argv[1] if len(sys.argv) > 1 else "out/mednist/imagefolder")
