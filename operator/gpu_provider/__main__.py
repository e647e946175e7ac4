"""`python -m gpu_provider` is the same as the `gpu-provider` console script."""

from gpu_provider.cli import main

if __name__ == "__main__":
    main()
