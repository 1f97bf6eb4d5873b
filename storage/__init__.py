"""The DuckDB results file: its schema, the single writer's operations and the read-side queries."""
