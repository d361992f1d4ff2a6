# The clinic hub's image; deploy/compose.yaml builds it with the repository root as context
# (hub.Dockerfile.dockerignore beside this file keeps node_modules, .venv and data out).
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY monitor ./monitor
COPY firmware_sim ./firmware_sim
COPY dashboard ./dashboard
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --home-dir /var/lib/spotter --create-home spotter

USER spotter
WORKDIR /var/lib/spotter
CMD ["spotter", "hub", "--config", "/etc/spotter/hub.toml"]
