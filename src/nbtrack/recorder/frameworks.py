"""Capturers for objects of ML frameworks: scikit-learn estimators and searches, PyTorch modules and
optimizers. They are registered by the real type's name (a class anywhere in the value's MRO), never
by duck typing: an object that merely has ``get_params`` and ``fit`` (a mock, a user's class) is not
probed. nbtrack imports none of these libraries: only their own objects ever reach these capturers.

A capturer returns a fingerprint (``type``, ``hash``, ``hash_method``, ``shape``, ``length``,
``dtype``, ``summary``) and may add ``params`` and ``metrics``: the recorder stores those as the
run's params (kind ``capturer``) and metrics, prefixed with the variable's name. Other packages add
theirs the same way, with ``nbtrack.register_capturer`` or the ``nbtrack.capturers`` entry point.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import xxhash

from ..errors import UnhashableInputError
from .budget import OverBudget
from .capture import Fingerprinter, fingerprint_dict, as_scalar, hash_state, registry, type_name


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        scalar, plain = as_scalar(value)
        if scalar:
            out[key] = plain
        elif value is not None:
            out[key] = type(value).__name__   # a nested estimator, a callable: its class names it
    return out


def _fitted(est: Any) -> bool:
    return any(k.endswith("_") and not k.startswith("_") for k in vars(est))


def capture_estimator(est: Any) -> dict[str, Any]:
    """scikit-learn estimators (and pipelines, searches): ``get_params(deep=False)``, class, fitted
    or not; searches also their best params and score. The hash is of the estimator's attributes
    (arrays from their memory, nested estimators the same way), not of its pickle: no ``__reduce__``
    runs, and a refit between a cell's start and end is seen."""
    h = xxhash.xxh3_128(type_name(est).encode())
    try:
        hash_state(h, dict(sorted(vars(est).items())))
        fp = fingerprint_dict(est, h.hexdigest(), "sklearn.state+xxh3_128")
    except OverBudget:
        raise
    except UnhashableInputError as e:   # an attribute that will not hash: the params are still worth keeping
        fp = fingerprint_dict(est, None, "unhashable", error=str(e))
    params = _plain_params(est.get_params(deep=False))
    metrics: dict[str, float] = {}
    best = getattr(est, "best_params_", None)
    if isinstance(best, dict):
        params.update({f"best.{k}": v for k, v in _plain_params(best).items()})
        score = getattr(est, "best_score_", None)
        if isinstance(score, (int, float)) or hasattr(score, "item"):
            metrics["best_score"] = float(score)
    fp["summary"] = {**fp.get("summary", {}), "class": type_name(est), "fitted": _fitted(est)}
    return {**fp, "params": params, "metrics": metrics}


def _tensor_digest(h: Any, tensor: Any) -> str:
    """CPU tensors are hashed from their memory; others from statistics computed on their device
    (a few numbers cross to the CPU instead of the whole tensor)."""
    t = tensor.detach()
    h.update(repr((tuple(t.shape), str(t.dtype))).encode())
    if t.device.type == "cpu":
        contiguous = t.contiguous()
        h.update(contiguous.view(-1).view(__import__("torch").uint8).numpy().tobytes()
                 if contiguous.numel() else b"")
        return "xxh3_128"
    wide = t.double() if t.is_floating_point() or t.is_complex() else t.to(dtype=__import__("torch").float64)
    stats = __import__("torch").stack([wide.sum(), (wide * wide).sum(), wide.abs().max() if t.numel() else wide.sum()])
    h.update(stats.cpu().numpy().tobytes())
    return "device-stats+xxh3_128"


def capture_torch_module(module: Any) -> dict[str, Any]:
    h = xxhash.xxh3_128()
    methods = set()
    for key, tensor in module.state_dict().items():
        h.update(key.encode())
        methods.add(_tensor_digest(h, tensor))
    n_params = sum(int(p.numel()) for p in module.parameters())
    trainable = sum(int(p.numel()) for p in module.parameters() if p.requires_grad)
    method = "torch.state_dict+" + ("device-stats" if "device-stats+xxh3_128" in methods else "xxh3_128")
    fp = fingerprint_dict(module, h.hexdigest(), method, None, None, None, **{"class": type_name(module),
                                                                 "parameters": n_params, "trainable": trainable})
    return {**fp, "params": {"class": type(module).__name__, "parameters": n_params}}


def capture_torch_optimizer(opt: Any) -> dict[str, Any]:
    groups = getattr(opt, "param_groups", [])
    params: dict[str, Any] = {"class": type(opt).__name__}
    for i, group in enumerate(groups):
        for key in ("lr", "momentum", "weight_decay"):
            if key in group:
                scalar, plain = as_scalar(group[key])
                if scalar:
                    params[f"group{i}.{key}" if len(groups) > 1 else key] = plain
    h = xxhash.xxh3_128(repr(sorted(params.items())).encode())
    return {**fingerprint_dict(opt, h.hexdigest(), "optimizer-params+xxh3_128", None, len(groups), None), "params": params}


def register_capturer(type_or_predicate: str | type | Callable[[Any], bool], fn: Fingerprinter) -> None:
    """Teach nbtrack a type: ``fn(value)`` returns a fingerprint dict (``hash`` at least; ``type``,
    ``shape``, ``length``, ``dtype``, ``summary`` optional) and may add ``params`` and ``metrics``
    (dicts of scalars), recorded with the run under the variable's name. ``type_or_predicate`` is a
    class, a dotted type name (``"mylib.Model"``: no import needed) or a function of the value.
    The latest registration wins."""
    registry.register(type_or_predicate, fn)


entry_points_loaded = False


def load_entry_points() -> None:
    """Capturers other packages declare in the ``nbtrack.capturers`` entry point group: each names a
    function that registers its capturers when called."""
    global entry_points_loaded
    entry_points_loaded = True
    from importlib.metadata import entry_points

    from ..errors import warn

    for ep in entry_points(group="nbtrack.capturers"):
        try:
            ep.load()()
        except Exception as e:   # a broken plugin must not break tracking
            warn(f"capturer plugin {ep.name} ({ep.value}) failed to load: {type(e).__name__}: {e}")


registry.register("torch.nn.modules.module.Module", capture_torch_module)
registry.register("torch.optim.optimizer.Optimizer", capture_torch_optimizer)
registry.register("sklearn.base.BaseEstimator", capture_estimator)
