FROM python:3.11.11-slim-bookworm

WORKDIR /app
COPY pyproject.toml README.md ./
COPY mockserver ./mockserver
COPY specs ./specs
COPY fixtures ./fixtures
RUN pip install --no-cache-dir '.[workers]' \
    && rm -rf /app/* \
    && useradd --create-home --uid 10001 mock \
    && mkdir /data && chown mock /data

USER mock
EXPOSE 8080
# /data is writable by the server, for `--state-file /data/state.db` (see compose.yaml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/__admin/health', timeout=2)"]
CMD ["mockserver", "serve", "--host", "0.0.0.0", "--port", "8080"]
