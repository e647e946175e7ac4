# syntax=docker/dockerfile:1.7
# One image for the three processes: `gpu-provider run`, `gateway` and `node-agent`
# (the chart picks the subcommand). Multi-stage: the wheel and its dependencies are built
# with compilers in `builder`; the final image has the installed packages, no compiler, no
# pip cache, and runs as 65532 (non-root, the chart's runAsUser).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel . --no-deps --wheel-dir /wheels \
 && pip wheel /wheels/*.whl --wheel-dir /wheels
# A virtual environment is copied whole into the final stage: no build tools follow it.
RUN python -m venv /opt/gpu-provider \
 && /opt/gpu-provider/bin/pip install --no-index --find-links /wheels gpu-provider-operator \
 && /opt/gpu-provider/bin/gpu-provider version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="gpu-provider-operator" \
      org.opencontainers.image.description="Sell a Kubernetes cluster's GPUs on a Spheron-compatible marketplace" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/gpu-provider/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/gpu-provider /opt/gpu-provider
# The chart mounts a read-only root filesystem with an emptyDir at /tmp.
USER 65532:65532
ENTRYPOINT ["gpu-provider"]
CMD ["--help"]
