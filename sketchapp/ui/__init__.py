"""Qt widgets. Nothing here imports torch: the GUI thread never runs a model."""
