"""Work dispatch: the JobQueue ABC and its local (in-process) backend."""
