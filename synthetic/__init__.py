"""Seeded SYNTHETIC data: a district's town areas, villages, roads, terrain and demo layers; p-median test graphs.

Nothing here is real. The generators write the stand-in files of a district folder (``accessplan district
generate``); the same seed rewrites byte-identical files. Only the CLI, the tests and the benchmarks import
this package: ``layers`` reads the files it writes like any other district data.
"""
