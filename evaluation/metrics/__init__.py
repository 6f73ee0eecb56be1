"""Pure metric functions over numpy arrays: no model, no file I/O."""
