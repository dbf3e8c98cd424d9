"""Experiments on the engine: presets and configs, the reproduction, Santurkar et al.'s analyses."""
