# One image for every VR Console process: web (daphne), workers, scheduler.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VRCONSOLE_VAR_DIR=/var/lib/vrconsole \
    STATIC_ROOT=/srv/vrconsole/staticfiles

# openssh-client for operators debugging from inside the container; no lab software here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/vrconsole --create-home vrconsole

WORKDIR /srv/vrconsole
COPY pyproject.toml README.md ./
RUN python -c 'import tomllib,subprocess,sys; deps=tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"]; subprocess.check_call([sys.executable,"-m","pip","install","--no-cache-dir",*deps])'
COPY manage.py ./
COPY vrconsole ./vrconsole
COPY diagnostics ./diagnostics
COPY templates ./templates
COPY static ./static
RUN SECRET_KEY=build-only-secret-key-not-used-at-runtime-000 python manage.py collectstatic --noinput -v 0

USER vrconsole
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "vrconsole.asgi:application"]
