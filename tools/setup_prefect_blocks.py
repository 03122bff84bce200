"""The spec's entry point for creating the Prefect Blocks the departments declare.

Same as `airnub blocks sync`, with the same flags:
    uv run python tools/setup_prefect_blocks.py [DEPT...] [--data-root PATH_OR_URL] [--dry-run]
"""

import sys

from airnub_platform.cli import main

if __name__ == "__main__":
    sys.argv[0] = "airnub"  # --help shows the command this is: `airnub ... sync [OPTIONS]`
    sys.argv[1:1] = ["blocks", "sync"]
    main()
