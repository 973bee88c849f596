"""`python -m interp …`: what `torchrun -m interp …` and `accelerate launch -m interp …` run."""

from interp.cli.app import main

if __name__ == "__main__":
    main()
