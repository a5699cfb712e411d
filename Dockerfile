# zhijian: one image for every process (worker, api, topics, simulate, rollup ...): `zhijian <command>`.
#   docker build -t zhijian .
#   docker run --rm zhijian --help
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# dependencies first (a layer that changes only with pyproject.toml), then the code
COPY pyproject.toml README.md ./
RUN mkdir -p zhijian stream detectors api bench && touch zhijian/__init__.py stream/__init__.py \
        detectors/__init__.py api/__init__.py bench/__init__.py \
    && pip install . && pip uninstall -y zhijian
COPY zhijian zhijian
COPY stream stream
COPY detectors detectors
COPY api api
COPY bench bench
COPY dashboard dashboard
# editable: the API serves /app/dashboard beside the code
RUN pip install --no-deps -e . && useradd --system --uid 10001 --home-dir /app zhijian \
    && mkdir -p /app/var && chown zhijian /app/var

USER 10001
ENV ZHIJIAN_DATA_DIR=/app/var ZHIJIAN_WORKER_HOST=0.0.0.0 ZHIJIAN_API_HOST=0.0.0.0
EXPOSE 6066 8000
ENTRYPOINT ["zhijian"]
CMD ["--help"]
