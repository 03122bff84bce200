# syntax=docker/dockerfile:1
# One image per department, holding only that department, the runtime (airnub-core) and
# their locked dependencies:
#   docker build --build-arg DEPARTMENT=dept_project_alpha -t airnub/dept-project-alpha:local .
# Its default command is a Prefect process worker for the department's pool; a Docker or
# Kubernetes worker replaces the command with the flow run itself. The deployments'
# module entrypoints import from the installed (non-editable) packages.
#
# Layers, so that a change to one department's code ships a small layer: third-party
# dependencies (keyed by uv.lock and the members' pyproject files only), then the
# workspace packages (the department and core) in a layer of their own.
#
# BASE_IMAGE and UV_IMAGE choose where Python and uv come from (CI uses these defaults;
# tools/integration/images.py builds both locally for machines without a registry).
ARG BASE_IMAGE=python:3.11-slim
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.9.26

FROM ${UV_IMAGE} AS uv

# Every member's pyproject.toml and nothing else: `--locked` checks the whole lock, and
# code changes do not reach the dependency layer's cache key.
FROM ${BASE_IMAGE} AS manifests
COPY packages /src/packages
RUN find /src/packages -type f ! -name pyproject.toml -delete \
    && find /src/packages -exec touch -h -d @0 {} +

FROM ${BASE_IMAGE} AS dependencies
ARG DEPARTMENT
# A failing `echo | tr` below must fail the build, not pass an empty name (podman
# applies SHELL only with `--format docker`).
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=uv /uv /usr/local/bin/uv
# Bytecode compiled at build time: the image runs as uid 10001, which cannot write
# __pycache__ under /opt/venv, so without it every flow run would compile Prefect again
# (tools/integration/tests/test_bytecode_image.py holds every uv install to it).
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock .python-version ./
COPY --from=manifests /src/packages packages
# --no-dev leaves out the platform tools (airnub-platform), which a department brings in
# its dev group only: the image holds the runtime alone.
RUN --mount=type=cache,target=/root/.cache/uv \
    : "${DEPARTMENT:?build with --build-arg DEPARTMENT=dept_<id>}" \
    && uv sync --locked --no-dev --no-editable --no-install-workspace \
    --package "$(echo "${DEPARTMENT}" | tr _ -)"

FROM dependencies AS workspace
ARG DEPARTMENT
COPY packages packages
# The workspace members this department's locked closure needs (itself and core), as
# wheels, into a prefix of their own: the final image copies them as one small layer.
# SHELL, with pipefail, is inherited from the dependencies stage.
# hadolint ignore=DL4006
RUN --mount=type=cache,target=/root/.cache/uv \
    uv export --locked --no-dev --no-editable --no-hashes --format requirements.txt \
    --package "$(echo "${DEPARTMENT}" | tr _ -)" | grep '^\./packages/' > /tmp/members.txt \
    && uv pip install --python /opt/venv/bin/python --prefix /opt/members --no-deps \
    -r /tmp/members.txt

FROM ${BASE_IMAGE}
ARG DEPARTMENT
RUN useradd --create-home --uid 10001 airnub && mkdir /data && chown airnub /data
COPY --from=dependencies /opt/venv /opt/venv
COPY --from=workspace /opt/members /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    AIRNUB_DATA_ROOT=/data \
    DO_NOT_TRACK=1 \
    AIRNUB_WORK_POOL=${DEPARTMENT}
USER 10001
WORKDIR /home/airnub
# The work pool is the department's, by convention: dept_project_alpha -> dept-project-alpha.
CMD ["sh", "-c", "exec prefect worker start --type process --pool \"$(echo \"$AIRNUB_WORK_POOL\" | tr _ -)\""]
