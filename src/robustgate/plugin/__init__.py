"""The pytest side: options, collection of spec files into items, failure reports and the summary table."""
