import sys

from wavry.cli import main

sys.exit(main())
