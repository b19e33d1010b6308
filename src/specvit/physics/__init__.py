"""The physics of the synthetic spectra and their information content: labels and priors, the
wavelength grid, the differentiable spectrum model, the noise model, Fisher matrices, Cramér-Rao and
Bayes bounds, and the calibration against the paper.
"""
