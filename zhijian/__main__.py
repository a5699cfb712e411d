import sys

from zhijian.cli import main

sys.exit(main())
