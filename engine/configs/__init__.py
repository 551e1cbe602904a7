"""One torch-free module per recipe: its config dataclass (fields declared with
:func:`engine.schema.param`) and its ``DASHBOARD`` (tabs of :mod:`engine.panes`). Each is
registered by one line in :mod:`engine.registry`."""
