import sys

from tad.cli import main

sys.exit(main())
