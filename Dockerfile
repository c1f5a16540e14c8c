# filterwatch image: the CLI and (later) the Faust worker.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY alerts ./alerts
COPY streams ./streams
COPY dashboards ./dashboards
COPY docs ./docs
RUN pip install --no-cache-dir .
ENTRYPOINT ["filterwatch"]
CMD ["--help"]
