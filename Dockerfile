# One image, two Cloud Run services: LONGRUN_APP=service (default) or LONGRUN_APP=processor.
FROM node:20-slim AS web
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./web
RUN npm run build

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, so a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir jobs service processor deploy cli samples \
    && touch jobs/__init__.py service/__init__.py processor/__init__.py deploy/__init__.py \
       cli/__init__.py samples/__init__.py \
    && pip install .
COPY jobs ./jobs
COPY service ./service
COPY processor ./processor
COPY deploy ./deploy
COPY cli ./cli
COPY samples ./samples
RUN pip install --no-deps --force-reinstall .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH LONGRUN_APP=service PORT=8080 \
    LONGRUN_WEB_DIR=/opt/longrun/web
RUN useradd --create-home --uid 10001 longrun
COPY --from=build /opt/venv /opt/venv
COPY --from=web /src/web/public /opt/longrun/web
USER longrun
WORKDIR /home/longrun
EXPOSE 8080
# Cloud Run sends SIGTERM and waits 10 s: uvicorn gets 8 of them to finish requests in flight.
CMD ["sh", "-c", "exec uvicorn \"${LONGRUN_APP}.app:create_app\" --factory --host 0.0.0.0 --port \"${PORT}\" --timeout-graceful-shutdown 8 --no-access-log"]
