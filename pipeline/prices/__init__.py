"""Price tables recorded in the log: recording them, listing them, repricing on purpose."""
