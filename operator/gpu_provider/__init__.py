"""GPU Provider Operator: sell a Kubernetes cluster's GPUs on a Spheron-compatible marketplace."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gpu-provider-operator")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
