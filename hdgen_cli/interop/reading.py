"""Reading and writing the official codes' `torch.save` files, tensors only.

A file that cannot be read (truncated, or holding code) is a CheckpointError (exit 1); a file that
reads but is not laid out as the chosen code writes it is a UsageError (exit 2: a wrong --from).

`torch.load(weights_only=True)` unpickles nothing but tensors and plain containers (dict, list,
tuple, numbers, strings): a file that names any other Python object (a module class, an argparse
Namespace, a function) is refused before anything runs. hdgen never falls back to a full unpickle.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import torch

from hdgen_cli.errors import CheckpointError, UsageError


class ModuleFields:
    """Receives the attributes of one pickled `nn.Module` subclass, by name, as plain data.

    Some official files pickle a whole module (GMMC saves its LDA layer object). Allowed under its
    exact qualified name for that one read, this class is what the unpickler builds instead of the
    original: an empty object whose `__dict__` gets the pickled fields (`_parameters`, `_buffers`,
    ints). No method of the original class, nor anything else in the file, runs.
    """

    def parameters_and_buffers(self) -> dict[str, torch.Tensor]:
        fields = vars(self)
        return {**dict(fields.get("_parameters") or {}), **dict(fields.get("_buffers") or {})}


def read_tensors_file(path: str | Path, modules: tuple[str, ...] = ()) -> object:
    """The object a `torch.save` file holds, loaded with `weights_only=True` onto the CPU. Each
    qualified class name in `modules` is read as `ModuleFields` (its tensors only)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"{path} not found; pass the official code's checkpoint file (e.g. best_valid_ckpt.pt)")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([(ModuleFields, m) for m in modules]):
            warnings.simplefilter("ignore")  # a plain pickle's protocol note: the refusal below says what matters
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL ([\w.]+)", str(exc)) or re.search(r"global '?([\w.]+)'?", str(exc))
        what = f" ({named.group(1)})" if named else ""
        raise CheckpointError(f"{path} holds a Python object other than tensors{what}; hdgen reads only tensors and "
                              "plain containers, so it ran nothing. Re-save the file with state_dict()s, or use the "
                              "file the official training script wrote") from None
    except Exception as exc:  # noqa: BLE001 - a truncated file, a zip error, a malformed pickle ...
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable torch.save file ({first}); it may be truncated or corrupt") from None


def write_tensors_file(obj: dict, path: str | Path) -> Path:
    """`torch.save` of a dict holding only tensors and plain containers (what `read_tensors_file`
    and the official codes' `torch.load` both accept)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


def state_dict_of(obj: object, path: Path, key: str = "model_state_dict") -> dict[str, torch.Tensor]:
    """The model state dict in a checkpoint dict, with DataParallel's `module.` prefix removed."""
    if not isinstance(obj, dict) or not isinstance(obj.get(key), dict):
        keys = sorted(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise UsageError(f"{path} has no '{key}' (found {keys}); it is not a checkpoint of that code, "
                         "choose another --from")
    state = obj[key]
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise UsageError(f"{path}: '{key}' holds non-tensors ({bad[:3]}); it is not a state dict")
    return dict(state)
