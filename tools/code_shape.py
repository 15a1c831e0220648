"""List curate's files over ~300 lines and functions over ~60 lines (the project guide's limits).

    python tools/code_shape.py [--max-file 300] [--max-function 60] [ROOT ...]

Prints one line per offender, longest first, and exits 1 when there is any. A function's length counts
from its ``def`` line (decorators excluded) to its last line, docstring and comments included.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Offender:
    """A file or function over its limit."""

    path: str
    name: str  # "" for a whole file
    lines: int

    def __str__(self) -> str:
        what = f"{self.path}:{self.name}" if self.name else self.path
        return f"{self.lines:5d}  {what}"


def long_functions(path: Path, limit: int, root: Path) -> list[Offender]:
    """Functions and methods of ``path`` longer than ``limit`` lines."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                found.append(Offender(str(path.relative_to(root)), node.name, length))
    return found


def offenders(folders: list[Path], max_file: int, max_function: int, root: Path = REPO) -> list[Offender]:
    """Every file over ``max_file`` lines and function over ``max_function`` lines, longest first."""
    found: list[Offender] = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > max_file:
                found.append(Offender(str(path.relative_to(root)), "", lines))
            found += long_functions(path, max_function, root)
    return sorted(found, key=lambda o: (-o.lines, o.path, o.name))


def main() -> int:
    """Print the offenders; 1 when there are any."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", type=Path, default=[REPO / "curate"])
    parser.add_argument("--max-file", type=int, default=300)
    parser.add_argument("--max-function", type=int, default=60)
    args = parser.parse_args()
    found = offenders([p.resolve() for p in args.roots], args.max_file, args.max_function)
    files = [o for o in found if not o.name]
    functions = [o for o in found if o.name]
    print(f"files over {args.max_file} lines: {len(files)}")
    for offender in files:
        print(offender)
    print(f"functions over {args.max_function} lines: {len(functions)}")
    for offender in functions:
        print(offender)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
