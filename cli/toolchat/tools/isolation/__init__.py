"""Calls run in children of the tool worker: frames, the worker, jobs, runner, processes."""
