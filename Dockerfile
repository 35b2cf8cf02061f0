# One image for both services: `docker run IMAGE producer` or `... consumer`.

FROM python:3.11.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# The pinned dependencies in a layer of their own, before any code: a code
# change rebuilds from the next step on and reinstalls none of them.
COPY pyproject.toml constraints.txt ./
RUN python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' > requirements.txt \
 && /opt/venv/bin/pip install --constraint constraints.txt --requirement requirements.txt
# The project itself; which packages it installs is decided in pyproject.toml
# alone (common, producer, consumer), and only the virtualenv reaches the image.
COPY . .
RUN /opt/venv/bin/pip install --no-deps .

# docker-compose.yml's `postgres` profile: the same, plus psycopg (the postgres extra).
FROM build AS build-postgres-sink
RUN python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["postgres"], sep="\n")' > postgres.txt \
 && /opt/venv/bin/pip install --constraint constraints.txt --requirement postgres.txt

FROM python:3.11.12-slim-bookworm AS runtime
RUN useradd --system --no-log-init --uid 10001 --no-create-home app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    METRICS_PORT=8000 \
    LOG_FORMAT=json
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "common.healthcheck"]
ENTRYPOINT ["python", "-m"]
CMD ["consumer"]

# `CONSUMER_HANDLER=examples.postgres_sink:bulk` (or `:handler`): the example sink beside the services.
FROM runtime AS postgres-sink
COPY --from=build-postgres-sink /opt/venv /opt/venv
COPY examples/__init__.py /opt/examples/examples/
COPY examples/postgres_sink/ /opt/examples/examples/postgres_sink/
ENV PYTHONPATH=/opt/examples

# The default, last: `docker build .` and the compose file's producer and consumer.
FROM runtime
COPY --from=build /opt/venv /opt/venv
