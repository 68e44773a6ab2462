import sys

from tools.release.cli import main

sys.exit(main())
