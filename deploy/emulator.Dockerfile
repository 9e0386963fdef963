# The project's AWS emulator (sandbox/, a development tool) for `docker compose --profile emulator`: moto's
# server with the project's fleet generator in front. Never deploy it next to real AWS credentials.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim
COPY requirements.txt requirements-dev.txt constraints.txt /tmp/pins/
# The pins come from the project's files (one definition each): moto from requirements-dev.txt, PyYAML and
# boto3/botocore from requirements.txt at the tested versions.
RUN pip install --no-cache-dir $(grep -E '^moto\[server\]==' /tmp/pins/requirements-dev.txt) \
        $(grep -iE '^(pyyaml|boto3|botocore)==' /tmp/pins/requirements.txt) \
    && useradd --create-home emulator
WORKDIR /app
COPY sandbox/ /app/sandbox/
USER emulator
EXPOSE 5055
CMD ["python", "-m", "sandbox", "serve", "--host", "0.0.0.0", "--port", "5055", "--profile", "small"]
