#!/bin/sh
# Roles and databases for Airflow's metadata and the hub's store, with the passwords
# from .env (run once by the postgres image, on its first start).
set -eu
psql -v ON_ERROR_STOP=1 --username postgres \
    -v airflow_password="$AIRFLOW_DB_PASSWORD" -v vhub_password="$VHUB_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE vehiclehub LOGIN PASSWORD :'vhub_password';
CREATE DATABASE vehiclehub OWNER vehiclehub;
SQL
