# Astro-style image: the official Airflow image (tag pinned, Python pinned) plus the project's runtime pins.
FROM apache/airflow:3.3.2-python3.12

# Install the pins without letting pip re-resolve Airflow itself (docs/aws-behaviours.md §25): AIRFLOW_VERSION is set
# by the base image and repeated on the same line.
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt

# The project root is on PYTHONPATH so `include.*` imports work in DAGs, plugins and the triggerer.
ENV PYTHONPATH=/opt/airflow \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
