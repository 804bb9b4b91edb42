"""Energy heads: how a backbone's output becomes class scores and energies."""

from hdgen_cli.energy.base import EnergyModel, build_energy_model, list_energies, register_energy
from hdgen_cli.energy.logits import LogitEnergy

__all__ = ["EnergyModel", "LogitEnergy", "build_energy_model", "list_energies", "register_energy"]
