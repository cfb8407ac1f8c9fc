# One image for every eduscale workload: its entry point is the `eduscale` command line,
# and the arguments pick the job. The pods pass theirs as `args` (stacks/workloads.py:
# `["serve", "auth"]`, `["worker", "indexer"]`, ...); by hand it is
# `docker run <image> serve course`, `docker run <image> migrate`, `docker run <image> --help`.
# With no arguments the image serves auth.
#
# Two stages: the builder installs uv.lock's runtime dependencies and the project into a
# virtual environment at /opt/venv with uv. The runtime stage is the same slim Python
# base with only that environment copied in: no uv, no compiler, no source tree, no dev
# tools. Every dependency ships a manylinux wheel for x86_64 and aarch64 (psycopg[binary],
# confluent-kafka, argon2-cffi, ...), so neither stage needs a compiler. The nodes are
# Graviton (arm64), so build with `docker buildx build --platform linux/arm64` (add
# linux/amd64 for local runs).
#
# Only what the pods run: the package's [project] dependencies. The `infra` extra (the
# Pulumi SDKs and providers, the policy pack's pulumi-policy) and the dev group (pytest,
# ruff, mypy, kubernetes-validate, ...) stay out; tests/project/test_services_image.py exports
# uv.lock with this file's `uv sync` flags and fails if any of them would be installed.
#
# Needs BuildKit (the default builder since Docker 23) for the RUN --mount options.
#
# Pins: the Python image by its multi-arch index digest (the tag says which release it
# is, the digest makes it immutable; Renovate or Dependabot can bump both). The builder
# and the runtime must use the same Python image, because the virtual environment's
# interpreter link points at /usr/local/bin/python3.11 in that image
# (tests/project/test_dockerfile.py checks they match). uv comes from PyPI, not from the
# ghcr.io/astral-sh/uv image: no digest of that image's 0.13.9 tag could be verified where
# this file was written, while PyPI publishes the sha256 of every wheel of the same
# release; docker/uv-requirements.txt pins them and pip installs it with --require-hashes,
# so a wheel that differs by one byte fails the build.

FROM docker.io/library/python:3.11.17-slim-trixie@sha256:45037981b62b34b44602584fccbc4d884d5f7dc92c7ee86bb38a698a79fe1e51 AS builder

# uv into the builder's /usr/local only; the runtime stage starts again from the base.
# --only-binary: the hashes are the wheels'; never build uv from its source distribution.
RUN --mount=type=bind,source=docker/uv-requirements.txt,target=/tmp/uv-requirements.txt \
    python -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --require-hashes --no-deps --only-binary=:all: -r /tmp/uv-requirements.txt

# UV_COMPILE_BYTECODE: write .pyc files now, because at runtime the root filesystem is
#   read-only and Python could not cache them.
# UV_LINK_MODE=copy: the cache is a separate mount, so hard links are impossible anyway.
# UV_PYTHON / UV_PYTHON_DOWNLOADS: use the image's interpreter, never a downloaded one
#   that the runtime stage would not have.
# UV_PROJECT_ENVIRONMENT: the environment goes to /opt/venv, outside the source tree.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when uv.lock or
# pyproject.toml change, not on every code change. --locked fails the build if uv.lock is
# out of date with pyproject.toml; --no-default-groups leaves out every default dependency
# group (dev: pytest, ruff, mypy, kubernetes-validate, ... and the infra extra it brings),
# and no --extra asks for the infra extra, so no Pulumi SDK is installed; --no-build
# refuses any source distribution, so a dependency without a wheel for the target
# platform fails here, loudly, instead of needing a compiler.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-default-groups --no-editable --no-install-project --no-build

# Then the project itself (the context is trimmed by .dockerignore), with the same
# selection. --no-editable installs it as a wheel into site-packages, so /opt/venv does not
# refer back to /src and is all the runtime stage needs (services/migrations/*.sql ship
# inside the wheel). --reinstall-package builds that wheel from this context every time:
# uv caches the wheel of a local directory keyed by its pyproject.toml's mtime only, so
# with the cache mount a rebuild after a code change would install the previous wheel.
COPY . /src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --no-editable --reinstall-package=eduscale


FROM docker.io/library/python:3.11.17-slim-trixie@sha256:45037981b62b34b44602584fccbc4d884d5f7dc92c7ee86bb38a698a79fe1e51 AS runtime

# The CI workflow adds org.opencontainers.image.version, .revision and .created at build
# time (e.g. docker/metadata-action); they are facts of the build, not of this file.
LABEL org.opencontainers.image.title="eduscale" \
      org.opencontainers.image.description="eduscale services and workers; the arguments pick one, e.g. serve course" \
      org.opencontainers.image.source="https://github.com/eduscale/eduscale" \
      org.opencontainers.image.licenses="Apache-2.0"

# The unprivileged user the pods run as: uid and gid 10001, RUN_AS in
# components/workload.py (runAsUser, runAsGroup and fsGroup of every pod). Its home is
# /tmp, the only writable path in the pod (a size-capped emptyDir), so anything that
# insists on a cache under ~ still works with a read-only root filesystem.
# The official image deletes the standard library's .pyc files; compile them once here,
# for the same reason the builder compiles the dependencies'.
# The base image already carries ca-certificates (TLS to AWS, OpenAI, MSK), netbase
# and tzdata; nothing else is installed, so there is no apt layer and no compiler.
RUN groupadd --system --gid 10001 eduscale \
 && useradd --system --uid 10001 --gid 10001 --no-log-init \
        --home-dir /tmp --no-create-home --shell /usr/sbin/nologin eduscale \
 && python -m compileall -q -j 0 /usr/local/lib/python3.11

# Amazon RDS's CA bundle: the services connect with sslmode=verify-full and sslrootcert
# pointing here (RDS_CA_BUNDLE in stacks/service_env.py). It is not added to the system
# store, so it is trusted for RDS connections only. --chmod because a file ADDed from a
# URL is otherwise root's with mode 0600, unreadable by the service user.
ADD --chmod=0644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem

# Only the environment: owned by root and not writable by the service user, so the
# running service cannot modify its own code.
COPY --from=builder /opt/venv /opt/venv

# PYTHONDONTWRITEBYTECODE: never try to write .pyc at runtime (read-only root).
# PYTHONUNBUFFERED: log lines reach the container log as they are written.
# PYTHONFAULTHANDLER: a crash in a C extension (librdkafka, libpq) leaves a traceback.
ENV PATH="/opt/venv/bin:$PATH" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1

WORKDIR /app

# Numeric, so the kubelet can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001

# `eduscale serve` listens on 0.0.0.0:8000 (HTTP_PORT in stacks/workloads.py).
EXPOSE 8000

# No HEALTHCHECK: Kubernetes ignores it; the pods' liveness and readiness probes on
# /health/live and /health/ready (components/workload.py) do that job.

# Exec form: eduscale (uvicorn) is PID 1 and receives SIGTERM directly, so it shuts down
# gracefully within the pod's termination grace period. Kubernetes `args` replace CMD and
# keep the entry point.
ENTRYPOINT ["eduscale"]
CMD ["serve", "auth"]
