# The ioc processes for docker-compose.yml. Two images from one file:
#   (default, last stage) ioc alone: worker, api, migrations, boundaries;
#   --target dev: ioc plus ioc-dev (tools/: simulators, demo), for the simulator only.

# The operator console, bundled as `make setup` does (console/build.mjs writes
# ioc/api/console_static/, which the API serves at /console/). Build-time only: Node
# is not in the images that run.
FROM node:20-bookworm-slim AS console
WORKDIR /src
COPY console/package.json console/package-lock.json console/
RUN cd console && npm ci --no-audit --no-fund --loglevel=error
COPY console console
RUN cd console && npm run build

FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# faust's folders (memory store: nothing kept) somewhere the ioc user may write
ENV IOC__STREAM__DATA_DIR=/tmp/ioc-faust
WORKDIR /app

# Dependencies first (cached while only the code changes), exactly the versions and
# files of requirements.lock: pip refuses any file whose sha256 is not listed there
# (`make lock` regenerates it from pyproject.toml; docs/security.md).
COPY pyproject.toml README.md requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY ioccore ioccore
COPY ioc ioc
COPY streams streams
COPY geo geo
COPY alerts alerts
COPY config config
COPY --from=console /src/ioc/api/console_static ioc/api/console_static
# Editable, so settings find /app/config/ioc.yaml (ioccore.settings.ROOT is the checkout).
# The ioc user owns nothing it runs (the code stays root's, read-only to it).
RUN pip install --no-deps -e . && useradd --system --uid 10001 ioc

FROM base AS dev
COPY tools tools
RUN pip install -e tools
USER ioc
ENTRYPOINT ["ioc"]
CMD ["--help"]

FROM base AS app
USER ioc
ENTRYPOINT ["ioc"]
CMD ["--help"]
