"""Models, engines and file formats. Torch and numpy only: nothing here imports Qt."""
