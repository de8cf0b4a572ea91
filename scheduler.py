"""Start the connector daemon: ``python scheduler.py [--config config.yaml]``.

A thin launcher; everything it runs lives in ``connector.daemon`` (same as ``lapor-connector run``).
"""

import sys

from connector.cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["run"]
    main()
