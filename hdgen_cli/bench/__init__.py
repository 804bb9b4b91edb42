"""`hdgen bench`: the methods side by side on one dataset, and which of the papers' claims hold.

It sits above `api` (it trains and evaluates through it); nothing below `api` imports it.
"""

from hdgen_cli.bench.claims import CLAIMS, check
from hdgen_cli.bench.grid import DEFAULT_PRESETS, QUICK_PRESETS, BenchSpec, run_bench
from hdgen_cli.bench.profiles import list_profiles, load_profile
from hdgen_cli.bench.protocol import Protocol

__all__ = ["CLAIMS", "DEFAULT_PRESETS", "QUICK_PRESETS", "BenchSpec", "Protocol", "check", "list_profiles",
           "load_profile", "run_bench"]
