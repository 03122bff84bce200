# syntax=docker/dockerfile:1
# One image per department, holding only that department's code and dependencies:
#   docker build --build-arg DEPARTMENT=dept_project_alpha -t airnub/dept-project-alpha .
# It runs a Prefect process worker for the department's work pool; the deployments'
# module entrypoints import from the installed (non-editable) package.
ARG PYTHON_VERSION=3.11

FROM ghcr.io/astral-sh/uv:0.9.26 AS uv

FROM python:${PYTHON_VERSION}-slim AS build
ARG DEPARTMENT
# A failing `echo | tr` in the RUN below must fail the build, not pass an empty name.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock .python-version ./
# Every member is mounted for the build only, so `--locked` can check the whole lock;
# --no-editable installs this department and core as wheels, and nothing else of
# packages/ reaches a layer. --no-dev leaves out the platform tools (airnub-platform),
# which a department brings in its dev group only: the image holds the runtime alone.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=packages,target=/src/packages \
    uv sync --locked --no-dev --no-editable --package "$(echo "${DEPARTMENT}" | tr _ -)"

FROM python:${PYTHON_VERSION}-slim
ARG DEPARTMENT
RUN useradd --create-home --uid 10001 airnub && mkdir /data && chown airnub /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    AIRNUB_DATA_ROOT=/data \
    DO_NOT_TRACK=1 \
    AIRNUB_WORK_POOL=${DEPARTMENT}
USER 10001
WORKDIR /home/airnub
# The work pool is the department's, by convention: dept_project_alpha -> dept-project-alpha.
CMD ["sh", "-c", "exec prefect worker start --type process --pool \"$(echo \"$AIRNUB_WORK_POOL\" | tr _ -)\""]
