"""Reports: campaign figures from SQL aggregation, and their renderers."""
