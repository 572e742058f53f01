"""Run the whole workshop once, as an instructor would before teaching it.

Executes every lesson in ``notebooks/`` (in order) and every solution in ``solutions/`` with
papermill into an output folder, against whatever stack labkit's settings point at (the
embedded one by default, which it starts if needed), and prints each notebook's wall time.
The executed copies keep their outputs, so they can be read afterwards or handed out.

    .venv/bin/python tools/run_workshop.py [--out out/workshop] [--minutes 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import papermill

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "workshop"), help="folder for the executed notebooks")
    parser.add_argument("--minutes", type=float, help="sensor minutes per lesson (default: each notebook's own)")
    args = parser.parse_args()
    from labkit import stack

    stack.ensure_up()
    out = Path(args.out)
    parameters = {"minutes": args.minutes} if args.minutes else {}
    times, failed = {}, []
    for folder in ("notebooks", "solutions"):
        for notebook in sorted((ROOT / folder).glob("*.ipynb")):
            target = out / folder / notebook.name
            target.parent.mkdir(parents=True, exist_ok=True)
            print(f"== {folder}/{notebook.name}", flush=True)
            started = time.monotonic()
            try:
                papermill.execute_notebook(
                    str(notebook), str(target), parameters=parameters, cwd=str(notebook.parent), progress_bar=False
                )
            except papermill.PapermillExecutionError as error:
                failed.append(f"{folder}/{notebook.name}: {error.ename}: {error.evalue}")
            times[f"{folder}/{notebook.name}"] = time.monotonic() - started
    print("\nwall time per notebook:")
    for name, seconds in times.items():
        print(f"  {name:<36} {seconds:6.0f} s")
    print(f"  {'total':<36} {sum(times.values()):6.0f} s   (executed copies in {out})")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
