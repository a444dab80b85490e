"""``python -m p2p`` is the ``pli`` command."""

from p2p.cli.app import main

if __name__ == "__main__":
    main()
