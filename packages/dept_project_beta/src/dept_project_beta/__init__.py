"""A department of the Airnub Prefect Starter; its display name is in pyproject.toml."""
