"""Seeded SYNTHETIC data of a district: town areas, villages, roads and demo layers (imports geo, layers).

Nothing here is real. The generators write the stand-in files of a district folder (``accessplan district
generate``); the same seed rewrites byte-identical files. Only the CLI, the tests and the benchmarks import
this package: ``layers`` reads the files it writes like any other district data.
"""
