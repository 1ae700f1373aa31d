"""`bench --tune` and `bench --shape-memory`: serve settings measured in child processes.

settings.py (Setting, Grid, the axes as typed) -> target.py (what is measured, LoadSpec, the
WorkerProcess running worker.py) -> sweep.py (every setting, then the final round) ->
choose.py (rank, the final round's winner) -> search.py (request to winner, --write);
shape_memory.py (RSS per oneDNN cache bound); report.py (tables, JSON, plots)."""
