#!/bin/sh
# web | worker | beat | manage <args> | anything else runs as given.
set -e
case "$1" in
  web)
    python manage.py migrate --noinput
    python manage.py bootstrap
    exec gunicorn config.wsgi --bind 0.0.0.0:8000 --workers "${WEB_CONCURRENCY:-3}" --access-logfile -
    ;;
  worker)
    exec celery -A config worker --queues default,engine --loglevel INFO --hostname "studio@%h"
    ;;
  beat)
    exec celery -A config beat --loglevel INFO
    ;;
  manage)
    shift
    exec python manage.py "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
