"""The command-line tools. Each is a script (``python tools/<name>.py``) whose ``main(argv)`` the
tests also call in-process, importing it as ``tools.<name>`` from the repository root (pytest's
``pythonpath``)."""
