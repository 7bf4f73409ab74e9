#!/usr/bin/env bash
# mypy over footfall's packages ([tool.mypy] in pyproject.toml says how strict, per module).
#
# The components live in top-level folders that install as sub-packages of `footfall`
# ([tool.setuptools] package-dir), and an editable install hides that mapping from mypy. So this
# builds the package as it installs, as a tree of symbolic links under build/typecheck (ignored by
# git), from the same package-dir table, runs mypy there and prints the real paths in its messages.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
case $python in /*) ;; *) python=$PWD/$python ;; esac  # still found after the cd below
tree=build/typecheck
"$python" - "$tree" <<'PY'
import shutil
import sys
import tomllib
from pathlib import Path

tree = Path(sys.argv[1])
package_dir = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
shutil.rmtree(tree / "footfall", ignore_errors=True)
root = tree / "footfall"
root.mkdir(parents=True)
# footfall/ itself is linked file by file, so that the sub-packages can sit beside its modules.
for entry in Path(package_dir["footfall"]).iterdir():
    if entry.suffix == ".py":
        (root / entry.name).symlink_to(entry.resolve())
for package, folder in package_dir.items():
    if package != "footfall":
        (tree / package.replace(".", "/")).symlink_to(Path(folder).resolve(), target_is_directory=True)
# mypy names the files as they lie in the tree (footfall/contracts/x.py); sed maps them back to the
# folders in the repository (contracts/x.py), which editors and readers find.
sed = [
    f"s#^{package.replace('.', '/')}/#{folder}/#"
    for package, folder in package_dir.items()
    if package != "footfall"
]
(tree / "paths.sed").write_text("\n".join(sed) + "\n")
PY
cd "$tree"
set +o pipefail  # mypy's status, not sed's
"$python" -m mypy --config-file "$OLDPWD/pyproject.toml" -p footfall | sed -f paths.sed
exit "${PIPESTATUS[0]}"
