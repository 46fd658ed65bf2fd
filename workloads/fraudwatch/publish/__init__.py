"""Publishing scored results and dashboards-as-code: Elasticsearch (index templates, ILM,
Watcher, bulk indexing), Tableau (.hyper extract + .tds, tableauserverclient) and Grafana
(drift between the committed dashboards/alert rules and a live Grafana). See docs/dashboards.md.
"""
