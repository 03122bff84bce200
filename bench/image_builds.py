"""Department images: size, layers, and what a one-line change costs to rebuild.

For every department: a build with a warm cache, its total size, layer count and the
size of its own top layer. Then, in a scratch copy of the repository, for the first
department: N rebuilds, each after appending one line to its package's __init__.py, with
the layer digests before and after (which layers were reused, which changed), and N
rebuilds with no change at all (everything from the cache), in the same run.

Needs podman (see tools/integration/images.py; base images are made once and cached).
Usage: uv run python bench/image_builds.py [N]   (default 3)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, median, table

sys.path.insert(0, str(ROOT / "tools" / "integration"))
import images  # the integration tools' helpers, from their folder
from airnub_core.conventions import departments, image_reference

MB = 1e6


def copy_of_repository(into: Path) -> Path:
    """What git tracks (and the working tree's version of it), as the build context."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = into / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def sizes() -> list[list[object]]:
    rows = []
    for name in sorted(departments()):
        tag = image_reference(name, "localhost/bench", "sizes")
        took = images.build(name, tag)
        layers = images.layers(tag)
        rows.append([
            name, f"{sum(layer.size for layer in layers) / MB:.0f} MB", len(layers),
            f"{layers[-2].size / MB:.0f} MB", f"{layers[-1].size / MB:.2f} MB",
            f"{took:.1f} s",
        ])  # fmt: skip
    return rows


def rebuilds(name: str, runs: int) -> tuple[list[list[object]], list[float], list[float]]:
    """(one row per changed rebuild, changed-rebuild seconds, unchanged-rebuild seconds)."""
    rows, changed, unchanged = [], [], []
    with tempfile.TemporaryDirectory(prefix="airnub-bench-images-") as scratch:
        context = copy_of_repository(Path(scratch))
        tag = image_reference(name, "localhost/bench", "rebuild")
        images.build(name, tag, context=context)
        before = images.layers(tag)
        module = context / "packages" / name / "src" / name / "__init__.py"
        for run in range(runs):
            unchanged.append(images.build(name, tag, context=context))
            with module.open("a", encoding="utf-8") as handle:
                handle.write(f"# bench: one-line change {run}\n")
            changed.append(images.build(name, tag, context=context))
            after = images.layers(tag)
            reused = sum(a.digest == b.digest for a, b in zip(before, after, strict=False))
            new = [layer for layer in after if layer.digest not in {b.digest for b in before}]
            rows.append([
                run + 1, f"{reused} of {len(after)}",
                ", ".join(f"{layer.digest[7:19]} ({layer.size / MB:.2f} MB)" for layer in new),
                f"{changed[-1]:.1f} s",
            ])  # fmt: skip
            before = after
    return rows, changed, unchanged


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    images.check_available()
    images.ensure_base_images()
    print("### Each department's image (warm cache)\n")
    print(table(["department", "size", "layers", "dependency layer", "department layer",
                 "build"], sizes()))  # fmt: skip
    names = sorted(departments())
    if not names:
        return
    rows, changed, unchanged = rebuilds(names[0], runs)
    print(f"\n### Rebuilding {names[0]} after a one-line change ({runs} runs)\n")
    print(table(["run", "layers reused", "new layer (digest, size)", "rebuild"], rows))
    print(f"\nmedian rebuild: {median(changed):.1f} s after a one-line change, "
          f"{median(unchanged):.1f} s with no change "
          f"(ratio {median(changed) / median(unchanged):.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
