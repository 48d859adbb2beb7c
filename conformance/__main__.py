import sys

from conformance.entry.cli import main

sys.exit(main())
