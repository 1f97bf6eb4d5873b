# The genejobs image: the CLI, the compute workers, the writer and Flower.
# docker-compose.yml runs each of them from this one image.
FROM python:3.11-slim

# libgomp1: the OpenMP runtime that the xgboost and lightgbm wheels link against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GENEJOBS_HOME=/data \
    HOME=/home/genejobs \
    NUMBA_CACHE_DIR=/tmp/numba-cache

WORKDIR /app

# Dependencies first, in a layer of their own, so a code change does not
# reinstall them; constraints.txt pins every version (`pip freeze --exclude-editable`).
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself (dependencies already satisfied above).
COPY . .
RUN pip install -c constraints.txt . \
    && cd / && python -c "import genejobs.worker.app, genejobs.worker.writer, genejobs.cli.main, flower" \
    && useradd --create-home --home-dir /home/genejobs --uid 1000 genejobs \
    && mkdir -p /data \
    && chown genejobs:genejobs /data

# A fresh named volume mounted at /data takes this directory's owner.
USER genejobs
# PyCaret writes logs.log into the current directory; keep it in the data dir.
WORKDIR /data

CMD ["genejobs", "--help"]
