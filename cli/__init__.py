"""The genejobs command line: parse, validate, enqueue, wait with a progress bar, print."""
