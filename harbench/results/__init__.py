"""The results layer: the store, and every view derived from it (query, analysis, tables, report, compare, plots,
HTML, export). Nothing here imports torch: reading commands stay fast."""
