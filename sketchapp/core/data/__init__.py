"""Sketch styles and data sets for training and evaluation."""
