import sys

from xpcs_suite.cli import main

sys.exit(main())
