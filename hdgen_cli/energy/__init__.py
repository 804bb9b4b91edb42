"""Energy heads: how a backbone's output becomes class scores and energies."""

from hdgen_cli.energy.base import EnergyModel, build_energy_model, list_energies, register_energy
from hdgen_cli.energy.logits import LogitEnergy
from hdgen_cli.energy.mmc import MMCEnergy, max_mahalanobis_means
from hdgen_cli.energy.spherical import SphericalLatentEnergy

__all__ = ["EnergyModel", "LogitEnergy", "MMCEnergy", "SphericalLatentEnergy", "max_mahalanobis_means", "build_energy_model", "list_energies", "register_energy"]
