"""The spec's entry point for loading configs into Prefect Variables.

Same as `airnub variables sync`, with the same flags:
    uv run python tools/setup_prefect_variables.py [DEPT...] [--env ENV] [--dry-run] [--prune]
"""

import sys

from airnub_platform.cli import main

if __name__ == "__main__":
    sys.argv[0] = "airnub"  # --help shows the command this is: `airnub ... sync [OPTIONS]`
    sys.argv[1:1] = ["variables", "sync"]
    main()
