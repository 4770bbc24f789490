"""What the Airflow DAG needs beyond the pipeline, one module per concern.

The DAG file (``dags/vehiclehub_nightly.py``) only wires tasks; each task body calls
the helpers here and then one stage of :mod:`vehiclehub.pipeline`.

- :mod:`~vehiclehub.airflow.settings`: the hub's TOML file named by the Airflow
  Variable ``vehiclehub_config``, else ``VHUB_CONFIG``; chatty libraries kept quiet.
- :mod:`~vehiclehub.airflow.dates`: the business date a run processes, and the name
  under which the run's tasks hold the store's lease.
- :mod:`~vehiclehub.airflow.connections`: an Airflow connection ``sftp_<agency>``, when
  it exists, replaces the configuration file's ``[agencies.<agency>]`` url.
- :mod:`~vehiclehub.airflow.sensors`: ``wait_<agency>`` pokes the agency's outbox until
  its files are there or its arrival deadline passes; ``feeds_<agency>`` tells what
  each intake takes.
- :mod:`~vehiclehub.airflow.assets`: one Airflow asset per feed, updated through the
  agency's alias only when a file of the feed loads.
- :mod:`~vehiclehub.airflow.checks`: ``preflight`` before anything is taken,
  ``files_accepted`` after intake, and what ``prune`` removed.
- :mod:`~vehiclehub.airflow.retry`: only faults that may pass by themselves are retried.
- :mod:`~vehiclehub.airflow.schedule`: the nightly timetable and the plugin that
  registers it.
- :mod:`~vehiclehub.airflow.workers`: the host name a task instance records.

Importing any of these touches no file, database or network (the DAG imports them at
parse time): the pipeline, the store and Airflow's runtime are imported when used.
Inside this package ``import airflow`` is still Airflow itself: imports are absolute.
"""
