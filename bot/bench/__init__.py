"""``python -m bot bench``: what a message costs the engine, how many groups a process carries, and the
same figures for the reference implementation (``chatharuhi`` 1.0.9), side by side in one run."""
