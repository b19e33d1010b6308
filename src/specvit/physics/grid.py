"""The wavelength grid and the physical knobs of the forward model (``specvit.physics.spectrum``), in a
module without torch: the workflow reads them when it loads the config (pixel count, the template
fit's settings), and a dry run of hundreds of jobs must not pay for importing torch."""

from __future__ import annotations

from dataclasses import dataclass

WAVE_START = 7100.2136  # Angstrom, PFS MR red arm
WAVE_STEP = 0.427246
N_PIXELS = 4096
RESOLUTION = 5000.0

# The reference star the line strengths of the line lists (and the molecular bands) refer to.
TEFF_REF, LOGG_REF = 5000.0, 4.44
THETA_REF = 5040.0 / TEFF_REF


@dataclass(frozen=True)
class ForwardParams:
    """Physical knobs of the model. The defaults are the calibrated values (see README)."""

    pre_broadening_fwhm: float = 0.9      # A; Gaussian width of the line profiles before the exponential
    thermal_scale: float = 0.6            # fraction of the Boltzmann/Saha factor not cancelled by the H- continuum
    ion_gravity_exponent: float = -1.0 / 3.0  # ionised lines ~ g^(-1/3)
    damping_gravity_exponent: float = 0.35    # Lorentz widths ~ 10^(0.35 (logg - 4.44))
    damping_metal_exponent: float = -1.0 / 3.0  # ... and ~ Z^(-1/3): metal-poor atmospheres have higher gas pressure
    dominant_metal_exponent: float = 2.0 / 3.0  # lines of the dominant ionisation stage ~ Z / kappa_H- ~ Z^(2/3)
    molecule_gravity_exponent: float = -0.2   # CN stronger in giants
    damping_scale: float = 1.0            # multiplies every Lorentz width (van der Waals enhancement)
    strength_offset: float = -0.12        # dex added to every line and band strength
