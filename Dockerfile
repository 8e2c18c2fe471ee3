# jmapsyncd in a container: configure it with JMAPSYNCD_* environment variables (or mount a
# config file at /config/config.toml), and mount volumes for the vdir and the state database.
#   docker build -t jmapsyncd .
#   docker run -d -e JMAPSYNCD_URL=https://jmap.example.com -e JMAPSYNCD_USERNAME=me \
#     -e JMAPSYNCD_PASSWORD_FILE=/run/secrets/jmap -v cal:/data/vdir -v state:/data/state jmapsyncd
FROM python:3.12.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XDG_CONFIG_HOME=/config \
    JMAPSYNCD_VDIR=/data/vdir \
    JMAPSYNCD_STATE_DB=/data/state/state.sqlite

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-compile . \
    && useradd --create-home --uid 10001 --user-group jmapsyncd \
    && mkdir -p /data/vdir /data/state /config \
    && chown -R jmapsyncd:jmapsyncd /data /config \
    && rm -rf /src

USER 10001:10001
WORKDIR /data
VOLUME ["/data/vdir", "/data/state"]

# SIGTERM lets the item in flight finish or roll back.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
    CMD ["jmapsyncd", "status", "--health"]

ENTRYPOINT ["jmapsyncd"]
CMD ["run"]
