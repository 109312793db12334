# One image for web, worker and beat; the command chooses (see docker/entrypoint.sh).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VAR_DIR=/var/lib/segment-studio

RUN groupadd --system studio && useradd --system --gid studio --home-dir /app studio

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config config
COPY core core
COPY pql pql
COPY aep aep
COPY connections connections
COPY segments segments
COPY exports exports
COPY jobs jobs
COPY engine engine
RUN pip install .
COPY manage.py ./
COPY templates templates
COPY static static
COPY docker/entrypoint.sh /usr/local/bin/studio-entrypoint

RUN mkdir -p "$VAR_DIR" && chown -R studio:studio "$VAR_DIR" \
    && chmod 0755 /usr/local/bin/studio-entrypoint
USER studio
VOLUME ["/var/lib/segment-studio"]
EXPOSE 8000

ENTRYPOINT ["studio-entrypoint"]
CMD ["web"]
