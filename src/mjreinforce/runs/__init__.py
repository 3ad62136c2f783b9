"""What lives on disk: the run-directory layout and its tables, checkpoint files, reading finished runs."""
