import sys

from ..commands.image import main

sys.exit(main())
