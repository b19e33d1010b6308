"""Data sets in the HDF5 data contract: writing, reading and validating split files, simulating
synthetic splits, nested training subsets, and training batches with fresh noise.
"""
