# One image, two Cloud Run services: LONGRUN_APP=service (the default) or LONGRUN_APP=processor.
# Build: gcloud builds submit --config cloudbuild.yaml (see the README's "Deploy to Google Cloud").

# The demo page's bundle (Firebase JS SDK + web/src), served by the API at /.
FROM node:20-slim AS web
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./web
RUN npm run build

# Python dependencies in a virtualenv, installed before the code is copied: a code change
# reuses the dependency layer.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
# Empty packages stand in for the code so that `pip install .` resolves only the dependencies.
RUN mkdir jobs pipelines service processor deploy cli samples \
    && touch jobs/__init__.py pipelines/__init__.py service/__init__.py processor/__init__.py \
       deploy/__init__.py cli/__init__.py samples/__init__.py \
    && pip install .
COPY jobs ./jobs
COPY pipelines ./pipelines
COPY service ./service
COPY processor ./processor
COPY deploy ./deploy
COPY cli ./cli
COPY samples ./samples
RUN pip install --no-deps --force-reinstall .

# The runtime: slim Python, the virtualenv and the page, run as an unprivileged user.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH \
    LONGRUN_APP=service PORT=8080 LONGRUN_WEB_DIR=/opt/longrun/web
RUN useradd --create-home --uid 10001 --user-group longrun
COPY --from=build /opt/venv /opt/venv
COPY --from=web /src/web/public /opt/longrun/web
USER 10001:10001
WORKDIR /home/longrun
EXPOSE 8080
# uvicorn, one process, no reload, proxy headers, on $PORT; on SIGTERM it finishes requests in
# flight for 8 s, inside Cloud Run's 10 s (deploy/serve.py).
CMD ["python", "-m", "deploy.serve"]
