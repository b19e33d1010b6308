"""Scoring models on the test set: the pooled and SNR-sweep views with fixed seeded noise, prediction
files, metrics with bootstrap intervals (R² against the label's prior variance), paired differences of
two models with a paired bootstrap, evaluation at other noise levels, label coverage, and the
information ceilings of the test stars.
"""
