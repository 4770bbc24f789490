-- Databases for Airflow's metadata and the hub's store; passwords are set by the
-- operator after the first start (ALTER ROLE ... PASSWORD ...).
CREATE ROLE airflow LOGIN;
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE vehiclehub LOGIN;
CREATE DATABASE vehiclehub OWNER vehiclehub;
