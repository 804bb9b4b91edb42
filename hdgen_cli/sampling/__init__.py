"""Samplers, replay buffer and initial distributions."""

from hdgen_cli.sampling.buffer import ReplayBuffer
from hdgen_cli.sampling.generate import generate, generate_class
from hdgen_cli.sampling.gmmc import GMMCSampler
from hdgen_cli.sampling.pyld import PYLDSampler
from hdgen_cli.sampling.init import build_init, list_inits, register_init
from hdgen_cli.sampling.registry import SAMPLERS, build_sampler, register_sampler
from hdgen_cli.sampling import informative  # noqa: F401,E402 - registers the gm init
from hdgen_cli.sampling.sgld import SGLDSampler, energy_grad, model_mode, sgld_step

__all__ = ["GMMCSampler", "PYLDSampler", "ReplayBuffer", "SAMPLERS", "SGLDSampler", "build_init", "build_sampler", "energy_grad",
           "generate", "generate_class", "list_inits", "model_mode", "register_init", "register_sampler", "sgld_step"]
