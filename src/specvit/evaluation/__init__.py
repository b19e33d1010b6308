"""Scoring models on the test set: the pooled and SNR-sweep views with fixed seeded noise, prediction
files, metrics with bootstrap intervals, evaluation at other noise levels, label coverage, and the
information ceilings of the test stars.
"""
