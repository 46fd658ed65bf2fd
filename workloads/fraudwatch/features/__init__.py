"""Features, each written once as an Ibis expression and run by DuckDB or Spark."""
