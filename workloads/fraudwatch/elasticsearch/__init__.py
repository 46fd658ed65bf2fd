"""Talking to Elasticsearch: the HTTP client and its credentials (`client`), the definitions
under dashboards/elasticsearch/ and the cluster's aliases (`definitions`), bulk indexing with
its retry budget (`bulk`). Publishing, streaming, retention and the intervention service all
go through it."""
