"""Simulated microscope: one shared scene and a fake of each vendor library driven by it."""
