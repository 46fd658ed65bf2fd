"""Airflow orchestration: the daily batch (`fraudwatch_daily`) and the weekly retraining
(`fraudwatch_retrain`). The DAG files live in pipelines/dags/ (point Airflow's dags folder
there); the steps they run are plain functions in pipelines/steps.py. See docs/airflow.md."""
