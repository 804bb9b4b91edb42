"""Energy heads: how a backbone's output becomes class scores and energies."""

from hdgen_cli.energy.base import EnergyModel, build_energy_model, list_energies, register_energy
from hdgen_cli.energy.logits import LogitEnergy
from hdgen_cli.energy.mmc import MMCEnergy, max_mahalanobis_means

__all__ = ["EnergyModel", "LogitEnergy", "MMCEnergy", "max_mahalanobis_means", "build_energy_model", "list_energies", "register_energy"]
