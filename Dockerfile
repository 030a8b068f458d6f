# syntax=docker/dockerfile:1
# zhoubao as a container image on Python 3.11. README.md, "Run with Docker Compose", shows how to
# build and run it. LibreOffice, which converts .doc, .wps and .et files, adds about 330 MB and is
# left out unless the build argument asks for it:
#   docker build --build-arg WITH_LIBREOFFICE=true -t zhoubao .

FROM python:3.11-slim-bookworm AS build

WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingest ./ingest
COPY notify ./notify
COPY service ./service
COPY store ./store
# A virtual environment copies whole into the runtime stage, which has the same Python.
RUN python -m venv /opt/zhoubao \
    && /opt/zhoubao/bin/pip install --no-cache-dir .


FROM python:3.11-slim-bookworm

ARG WITH_LIBREOFFICE=false

# postgresql-client gives `zhoubao backup --run-pg-dump` its pg_dump. Debian 12 ships version 15,
# which can dump the postgres:15 server of docker-compose.yml. Debian's security updates are
# wanted, so the packages are not pinned to versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && if [ "$WITH_LIBREOFFICE" = "true" ]; then \
        apt-get install -y --no-install-recommends libreoffice-calc-nogui libreoffice-writer-nogui; \
    fi \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/zhoubao \
        --shell /usr/sbin/nologin zhoubao \
    && install -d -o zhoubao -g zhoubao -m 0750 /var/lib/zhoubao \
    && install -d -m 0755 /etc/zhoubao

COPY --from=build /opt/zhoubao /opt/zhoubao

# The config is mounted read-only at ZHOUBAO_CONFIG; its [service] data_dir should be the volume.
ENV PATH=/opt/zhoubao/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ZHOUBAO_CONFIG=/etc/zhoubao/config.toml

# Numeric, so that a runtime can tell without /etc/passwd that this is not root.
USER 10001:10001
WORKDIR /var/lib/zhoubao
VOLUME ["/var/lib/zhoubao"]

# `zhoubao run` creates or migrates the database before its first poll.
ENTRYPOINT ["zhoubao"]
CMD ["run"]
