# The ioc processes (worker, api, simulator, migrations) for docker-compose.yml.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Dependencies first (cached while only the code changes).
COPY pyproject.toml README.md ./
COPY ioc/__init__.py ioc/__init__.py
RUN pip install --upgrade pip && pip install . && pip uninstall -y ioc

COPY ioc ioc
COPY streams streams
COPY geo geo
COPY alerts alerts
COPY config config
# Editable, so settings find /app/config/ioc.yaml (ioc.core.settings.ROOT is the checkout).
RUN pip install --no-deps -e . && useradd --system --uid 10001 ioc
USER ioc

ENTRYPOINT ["ioc"]
CMD ["--help"]
