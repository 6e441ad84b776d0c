"""The vsql SQL front end: a sqlglot dialect and the rewrites applied to each statement."""
